/*
 * memcached-hardened: preloaded into memcached by the entrypoint, on every profile.
 *
 * Per-client connection cap. memcached's SASL starts only after a connection is accepted, so one client
 * address that opens connections and never authenticates fills -c and locks every other client out.
 * accept()/accept4() count connections per peer address (IPv4 and IPv6, under a mutex: memcached accepts
 * on its main thread and closes on its workers); a connection over MEMCACHED_MAX_CONNECTIONS_PER_CLIENT
 * gets an error line and is closed at once, and memcached is told EAGAIN. Its accept loop
 * (conn_listening, 1.4.25 and 1.6) then stops and returns to libevent, whose level-triggered listen
 * event calls it again while connections wait: no spinning, no stall, and that client's existing
 * connections are untouched. close() gives the slot back.
 *
 * Compiled in only where the profile says its memcached/SASL needs it (each found by this project's
 * reliability tests on 1.4.25 / Cyrus SASL 2.1.26):
 *
 * REFUSE_SASL_STEP: a SASL step that no start preceded crashes memcached inside Cyrus SASL (it
 *    dereferences the missing mechanism): one unauthenticated packet stops the server. The image offers
 *    only PLAIN, which completes within sasl_server_start, so no legitimate client ever sends a step:
 *    every step is refused as a protocol error.
 * FD_HEADROOM: memcached sets its open-file limit to exactly -c, but needs descriptors of its own (event
 *    bases, thread pipes, and one per SASL lookup of the sasldb). At the connection limit accept() and
 *    the sasldb open fail with EMFILE before `maxconns_fast` can refuse politely, and a worker thread
 *    stops serving its existing connections. Widening the limit by a fixed headroom lets maxconns_fast
 *    refuse new connections while the existing ones keep working.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* The most descriptors the cap keeps track of; memcached fixes its limit to -c (+ FD_HEADROOM) at start. */
#define MAX_TRACKED_FDS (1 << 20)

struct peer {
  struct in6_addr address; /* IPv4 peers as IPv4-mapped IPv6 */
  unsigned long connections;
  int in_use;
  int reported;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long per_client; /* 0: no cap (memcached started without the entrypoint) */
static struct peer *peers;       /* open addressing, linear probing; more than twice the descriptors */
static size_t peer_mask;
static struct in6_addr *fd_peer; /* the peer a counted descriptor belongs to */
static unsigned char *fd_counted;
static size_t fd_slots;

/* The next definition of a wrapped function, looked up once; errno is kept (perror still needs it). */
static void *next_definition(void **cached, const char *name) {
  if (!*cached) {
    int saved = errno;
    *cached = dlsym(RTLD_NEXT, name);
    errno = saved;
  }
  return *cached;
}
#define REAL(name) ((__typeof__(&name))({ static void *cached; next_definition(&cached, #name); }))

__attribute__((constructor)) static void read_cap(void) {
  const char *value = getenv("MEMCACHED_MAX_CONNECTIONS_PER_CLIENT");
  if (value) per_client = strtoul(value, NULL, 10);
}

/* Sizes the tables from the descriptor limit memcached has set by its first accept. Under the lock. */
static int tables_ready(void) {
  struct rlimit limit;
  if (fd_slots) return 1;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  size_t fds = limit.rlim_max == RLIM_INFINITY || limit.rlim_max > MAX_TRACKED_FDS ? MAX_TRACKED_FDS : limit.rlim_max;
  size_t slots = 2;
  while (slots <= 2 * fds) slots *= 2;
  peers = calloc(slots, sizeof *peers);
  fd_peer = calloc(fds, sizeof *fd_peer);
  fd_counted = calloc(fds, 1);
  if (!peers || !fd_peer || !fd_counted) {
    free(peers);
    free(fd_peer);
    free(fd_counted);
    return 0;
  }
  peer_mask = slots - 1;
  fd_slots = fds;
  return 1;
}

static size_t home_slot(const struct in6_addr *address) {
  uint32_t hash = 2166136261u; /* FNV-1a */
  for (int i = 0; i < 16; i++) hash = (hash ^ address->s6_addr[i]) * 16777619u;
  return hash & peer_mask;
}

/* The peer's entry; a new one if `create` (the table never fills: it has twice the descriptors). */
static struct peer *find_peer(const struct in6_addr *address, int create) {
  for (size_t i = home_slot(address);; i = (i + 1) & peer_mask) {
    if (!peers[i].in_use) {
      if (!create) return NULL;
      peers[i] = (struct peer){ .address = *address, .in_use = 1 };
      return &peers[i];
    }
    if (memcmp(&peers[i].address, address, sizeof *address) == 0) return &peers[i];
  }
}

/* Removes an entry, shifting later entries of its probe run back so every lookup still finds them. */
static void forget_peer(struct peer *entry) {
  size_t hole = (size_t)(entry - peers);
  for (size_t i = (hole + 1) & peer_mask; peers[i].in_use; i = (i + 1) & peer_mask) {
    /* Entry i may fill the hole only if the hole lies on its probe path (between its home slot and i). */
    if (((i - home_slot(&peers[i].address)) & peer_mask) >= ((i - hole) & peer_mask)) {
      peers[hole] = peers[i];
      hole = i;
    }
  }
  peers[hole].in_use = 0;
}

/* Gives a counted descriptor's slot back. Under the lock. */
static void release(int fd) {
  struct peer *entry = find_peer(&fd_peer[fd], 0);
  fd_counted[fd] = 0;
  if (entry && --entry->connections == 0) forget_peer(entry);
}

static int peer_address(const struct sockaddr_storage *peer, struct in6_addr *address) {
  if (peer->ss_family == AF_INET6) {
    *address = ((const struct sockaddr_in6 *)peer)->sin6_addr;
    return 1;
  }
  if (peer->ss_family == AF_INET) {
    memset(address, 0, sizeof *address);
    address->s6_addr[10] = address->s6_addr[11] = 0xff;
    memcpy(&address->s6_addr[12], &((const struct sockaddr_in *)peer)->sin_addr, 4);
    return 1;
  }
  return 0;
}

/* Counts a freshly accepted connection against its peer, or refuses it (error line, close, EAGAIN). */
static int admit(int fd, const struct sockaddr_storage *peer, socklen_t peer_length, struct sockaddr *address, socklen_t *length) {
  struct in6_addr client;
  if (fd >= 0 && per_client > 0 && peer_address(peer, &client)) {
    int admitted = 0, report = 0;
    unsigned long held = 0;
    pthread_mutex_lock(&lock);
    /* A descriptor beyond the tables cannot be counted: refuse it rather than let it past the cap. */
    if (tables_ready() && (size_t)fd < fd_slots) {
      if (fd_counted[fd]) release(fd); /* closed behind our back (not through close()): stale */
      struct peer *entry = find_peer(&client, 1);
      held = entry->connections;
      admitted = held < per_client;
      if (admitted) {
        entry->connections++;
        fd_counted[fd] = 1;
        fd_peer[fd] = client;
      } else {
        report = !entry->reported;
        entry->reported = 1;
      }
    }
    pthread_mutex_unlock(&lock);
    if (!admitted) {
      static const char refusal[] = "SERVER_ERROR too many connections from this address\r\n";
      ssize_t sent = write(fd, refusal, sizeof refusal - 1); /* best effort: the client may be gone */
      (void)sent;
      REAL(close)(fd);
      if (report) {
        char text[INET6_ADDRSTRLEN] = "?";
        int v4 = IN6_IS_ADDR_V4MAPPED(&client);
        inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? (const void *)&client.s6_addr[12] : (const void *)&client, text, sizeof text);
        fprintf(stderr, "memcached-hardened: client %s holds %lu connections (MEMCACHED_MAX_CONNECTIONS_PER_CLIENT=%lu); refusing its new ones until it closes some\n",
                text, held, per_client);
      }
      errno = EAGAIN;
      return -1;
    }
  }
  if (fd >= 0 && address && length) {
    memcpy(address, peer, *length < peer_length ? *length : peer_length);
    *length = peer_length;
  }
  return fd;
}

/* glibc declares the address argument as a transparent union under _GNU_SOURCE. */
int accept(int socket, __SOCKADDR_ARG address, socklen_t *restrict length) {
  struct sockaddr_storage peer;
  socklen_t peer_length = sizeof peer;
  int fd = REAL(accept)(socket, (struct sockaddr *)&peer, &peer_length);
  return admit(fd, &peer, peer_length, address.__sockaddr__, length);
}

int accept4(int socket, __SOCKADDR_ARG address, socklen_t *restrict length, int flags) {
  struct sockaddr_storage peer;
  socklen_t peer_length = sizeof peer;
  int fd = REAL(accept4)(socket, (struct sockaddr *)&peer, &peer_length, flags);
  return admit(fd, &peer, peer_length, address.__sockaddr__, length);
}

int close(int fd) {
  /* Released before the real close, so the number cannot be accepted again while still counted. */
  pthread_mutex_lock(&lock);
  if (fd >= 0 && (size_t)fd < fd_slots && fd_counted[fd]) release(fd);
  pthread_mutex_unlock(&lock);
  return REAL(close)(fd);
}

/* memcached calls perror("accept4()") even for EAGAIN, which its own comment calls transient and not
 * worth logging; every refused connection returns EAGAIN, so those stay out of the log. */
void perror(const char *message) {
  if ((errno == EAGAIN || errno == EWOULDBLOCK) && message && strncmp(message, "accept", 6) == 0) return;
  REAL(perror)(message);
}

#ifdef REFUSE_SASL_STEP
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
#endif

#ifdef FD_HEADROOM
int setrlimit(__rlimit_resource_t resource, const struct rlimit *limit) {
  if (resource == RLIMIT_NOFILE && limit->rlim_cur != RLIM_INFINITY && limit->rlim_max != RLIM_INFINITY) {
    struct rlimit widened = { limit->rlim_cur + FD_HEADROOM, limit->rlim_max + FD_HEADROOM };
    if (REAL(setrlimit)(resource, &widened) == 0) return 0;
  }
  return REAL(setrlimit)(resource, limit);
}
#endif
