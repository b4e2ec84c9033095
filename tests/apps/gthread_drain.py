# gunicorn's gthread worker, draining the way an HTTP/1.1 server should
# (RFC 9112 section 9.6): `gunicorn -k gthread_drain.DrainingThreadWorker`.
#
# The stock gthread worker (gunicorn 20.1) at SIGTERM clears `alive`: a
# request it handles from then on is answered `Connection: close`, but its
# loop ends at its next turn (at most a second) and the worker exits,
# closing the idle keep-alive connections still in its poller, though a
# client may have sent its next request on one already: that request fails
# (a reset, or an EOF; ~85 in 15 restarts under tests/e2e/gunicorn_gthread.sh).
# This worker, at SIGTERM, stops accepting at its next turn but keeps its
# connections: the next response on each says `Connection: close`, an idle
# one is closed only at its ordinary keep-alive timeout, and the worker
# exits once it holds none. gunicorn's --graceful-timeout must be above
# --keep-alive (plus the longest request): the master kills its workers at it.
from gunicorn.workers.gthread import ThreadWorker


class DrainingThreadWorker(ThreadWorker):
    draining = False

    def handle_exit(self, sig, frame):
        # A signal handler: only a flag. The loop below acts on it.
        self.draining = True

    def murder_keepalived(self):
        # Runs once per turn of the worker's loop (at least once a second).
        super().murder_keepalived()
        if not self.draining:
            return
        if self.sockets:
            for sock in self.sockets:  # stop accepting; the listener is shared
                self.poller.unregister(sock)
                sock.close()
            self.sockets = []
            # gthread answers `Connection: close` once this many are kept.
            self.max_keepalived = 0
            self.log.info("draining: %d connections open", self.nr_conns)
        with self._lock:
            idle = len(self._keep)
        if self.nr_conns <= 0 and not idle and not self.futures:
            self.alive = False
