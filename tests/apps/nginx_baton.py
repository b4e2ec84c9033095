#!/usr/bin/env python3
"""nginx under baton (docs/recipes.md): the launcher a service file runs.

  command = { "python3", "nginx_baton.py", PORT, HEALTH_BASE, FOLDER }

nginx takes inherited listening sockets from its NGINX variable (the same
mechanism as its own binary upgrade): NGINX="3;" hands it baton's shared
listener, fd 3, and its `listen 127.0.0.1:PORT` must name that socket's
address. A health port of the generation's own (HEALTH_BASE +
BATON_GENERATION), which nginx binds itself, lets the readiness probe reach
the new generation and no other (nginx sends no READY=1). KEEPALIVE in the
environment sets keepalive_timeout (nginx's default 75s; 0 turns keep-alive
off). nginx drains on QUIT: the policy's `signal`.
"""
import os
import sys

port, base, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
gen = int(os.environ["BATON_GENERATION"])
conf = os.path.join(folder, "nginx.%d.conf" % gen)
os.makedirs(os.path.join(folder, "tmp"), exist_ok=True)
with open(conf, "w") as f:
    f.write("""
daemon off;
master_process on;
worker_processes 1;
pid %(folder)s/nginx.%(gen)d.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_timeout %(keepalive)s;
    client_body_temp_path %(folder)s/tmp;
    proxy_temp_path %(folder)s/tmp;
    fastcgi_temp_path %(folder)s/tmp;
    uwsgi_temp_path %(folder)s/tmp;
    scgi_temp_path %(folder)s/tmp;
    server {
        listen 127.0.0.1:%(port)s;
        location / { return 200 "hello from nginx\\n"; }
    }
    server {
        listen 127.0.0.1:%(health)d;
        location / { return 200 "ok\\n"; }
    }
}
""" % {"folder": folder, "gen": gen, "port": port, "health": base + gen,
       "keepalive": os.environ.get("KEEPALIVE", "75s")})
os.environ["NGINX"] = "3;"
os.execvp("nginx", ["nginx", "-e", "stderr", "-p", folder, "-c", conf])
