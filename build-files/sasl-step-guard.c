/*
 * memcached-hardened: preloaded into memcached on profiles whose Cyrus SASL crashes on a SASL step that
 * no start preceded (2.1.26 on Ubuntu 16.04 dereferences the missing mechanism: one unauthenticated
 * packet stops memcached). The image offers only PLAIN, which completes within sasl_server_start, so no
 * legitimate client ever sends a step: every step is refused as a protocol error.
 */
typedef struct sasl_conn sasl_conn_t;
#define SASL_BADPROT (-5)

int sasl_server_step(sasl_conn_t *conn, const char *clientin, unsigned clientinlen, const char **serverout, unsigned *serveroutlen) {
  (void)conn;
  (void)clientin;
  (void)clientinlen;
  if (serverout) *serverout = 0;
  if (serveroutlen) *serveroutlen = 0;
  return SASL_BADPROT;
}
