# Makes a man page from one of docs/*.md (cmake -P, at build time):
#   -DIN=FILE.md -DOUT=PAGE -DTITLE=BATON -DSECTION=1 -DMANUAL="User Commands"
#   -DNAME="baton - ..." -DVERSION=X.Y.Z -DMD2MAN=go-md2man -DLUAJIT=luajit
#   [-DSTART="## SYNOPSIS"]
# cmake/manpage.lua shapes the Markdown (sections, tables as lists), and
# go-md2man turns it into roff. The date honours SOURCE_DATE_EPOCH, so
# builds are reproducible.
string(TIMESTAMP date "%Y-%m-%d" UTC)
if(NOT DEFINED START)
  set(START "")
endif()
get_filename_component(here "${CMAKE_CURRENT_LIST_FILE}" DIRECTORY)
get_filename_component(outdir "${OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${outdir}")
execute_process(COMMAND "${LUAJIT}" "${here}/manpage.lua" "${IN}" "${OUT}.md" "${TITLE}" "${SECTION}"
                        "${date}" "${VERSION}" "${MANUAL}" "${NAME}" "${START}"
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake/manpage.lua failed on ${IN}: ${err}")
endif()
execute_process(COMMAND "${MD2MAN}" -in "${OUT}.md" -out "${OUT}" RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "go-md2man failed on ${IN}: ${err}")
endif()
# go-md2man leaves a code line that starts with a dot as it is, and roff
# would take it for a request: \& keeps it text.
file(READ "${OUT}" roff)
string(REGEX REPLACE "\n\\.([^A-Za-z])" "\n\\\\&.\\1" roff "${roff}")
file(WRITE "${OUT}" "${roff}")
