#!/bin/sh
# Leaves an orphan behind (a background sleep whose parent exits at once),
# then becomes the example server. The orphan is re-parented to the
# supervisor (a child subreaper), which must reap it: no zombie.
(sleep 0.3 &)
exec "$@"
