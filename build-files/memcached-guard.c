/*
 * memcached-hardened: preloaded into memcached on profiles whose memcached 1.4.25 / Cyrus SASL 2.1.26
 * misbehave under abuse (each found by this project's reliability tests):
 *
 * 1. A SASL step that no start preceded crashes memcached inside Cyrus SASL (it dereferences the missing
 *    mechanism): one unauthenticated packet stops the server. The image offers only PLAIN, which
 *    completes within sasl_server_start, so no legitimate client ever sends a step: every step is
 *    refused as a protocol error.
 * 2. memcached sets its open-file limit to exactly -c, but needs descriptors of its own (event bases,
 *    thread pipes, and one per SASL lookup of the sasldb). At the connection limit accept() and the
 *    sasldb open fail with EMFILE before `maxconns_fast` can refuse politely, and a worker thread stops
 *    serving its existing connections. Widening the limit by a fixed headroom lets maxconns_fast refuse
 *    new connections while the existing ones keep working.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/resource.h>

typedef struct sasl_conn sasl_conn_t;
#define SASL_BADPROT (-5)
#define FD_HEADROOM 128

int sasl_server_step(sasl_conn_t *conn, const char *clientin, unsigned clientinlen, const char **serverout, unsigned *serveroutlen) {
  (void)conn;
  (void)clientin;
  (void)clientinlen;
  if (serverout) *serverout = 0;
  if (serveroutlen) *serveroutlen = 0;
  return SASL_BADPROT;
}

int setrlimit(__rlimit_resource_t resource, const struct rlimit *limit) {
  int (*real_setrlimit)(__rlimit_resource_t, const struct rlimit *) = (int (*)(__rlimit_resource_t, const struct rlimit *))dlsym(RTLD_NEXT, "setrlimit");
  if (resource == RLIMIT_NOFILE && limit && limit->rlim_cur != RLIM_INFINITY && limit->rlim_max != RLIM_INFINITY) {
    struct rlimit widened = { limit->rlim_cur + FD_HEADROOM, limit->rlim_max + FD_HEADROOM };
    if (real_setrlimit(resource, &widened) == 0) return 0;
  }
  return real_setrlimit(resource, limit);
}
