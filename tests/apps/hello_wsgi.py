# A plain WSGI app for the gunicorn test: gunicorn itself does the systemd
# socket activation (LISTEN_FDS) and READY=1; nothing here knows baton.
import os


def app(environ, start_response):
    body = ("hello from gunicorn worker %d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
