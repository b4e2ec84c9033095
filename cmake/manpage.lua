-- Turns one of docs/*.md into the Markdown of a man page, for go-md2man
-- (run by cmake/manpage.cmake at build time):
--   luajit manpage.lua IN OUT TITLE SECTION DATE VERSION MANUAL NAME [START]
-- The page is the document itself: from the heading START (or, without
-- one, everything after the first heading, as DESCRIPTION), its "## "
-- sections made the page's sections, under a NAME line. Tables become
-- definition lists: a man page is read on an 80-column terminal, where a
-- table of four wide columns is not.
local src, out, title, section, date, version, manual, name, start = unpack(arg)
local f = assert(io.open(src, "rb"))
local text = f:read("*a")
f:close()

if start and start ~= "" then
  local at = text:find("\n" .. start, 1, true)
  if not at then error(src .. ": no '" .. start .. "' to start the man page at") end
  text = text:sub(at + 1)
else
  text = "## DESCRIPTION\n" .. text:gsub("^[^\n]*\n", "", 1)
end

-- The cells of a table row, split on | outside `code`.
local function cells(line)
  local row, cur, code = {}, {}, false
  line = line:gsub("^%s*|", ""):gsub("|%s*$", "")
  for c in line:gmatch(".") do
    if c == "`" then code = not code end
    if c == "|" and not code then
      row[#row + 1] = table.concat(cur)
      cur = {}
    else
      cur[#cur + 1] = c
    end
  end
  row[#row + 1] = table.concat(cur)
  for i, v in ipairs(row) do row[i] = v:match("^%s*(.-)%s*$") end
  return row
end

local lines, result, i = {}, {}, 1
for l in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
local fenced = false
while i <= #lines do
  local l = lines[i]
  if l:match("^```") then fenced = not fenced end
  if not fenced and l:match("^|") and (lines[i + 1] or ""):match("^|[%s%-:|]+$") then
    local head = cells(l)
    i = i + 2
    while i <= #lines and lines[i]:match("^|") do
      local row = cells(lines[i])
      local facts = {}
      for c = 2, #row - 1 do
        if row[c] ~= "" then facts[#facts + 1] = (head[c] or "") .. ": " .. row[c] end
      end
      result[#result + 1] = row[1]
      local def = row[#row]
      if #facts > 0 then def = table.concat(facts, "; ") .. ". " .. def end
      result[#result + 1] = ": " .. (#row > 1 and def or "")
      result[#result + 1] = ""
      i = i + 1
    end
  else
    if not fenced then l = l:gsub("^## ", "# ") end
    result[#result + 1] = l
    i = i + 1
  end
end

local o = assert(io.open(out, "wb"))
o:write(('%% %s %s "%s" "baton %s" "%s"\n\n# NAME\n\n%s\n\n'):format(title, section, date, version,
  manual, name))
o:write(table.concat(result, "\n"))
o:close()
