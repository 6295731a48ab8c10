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
 * CHECK_BINARY_FRAMES (memcached before 1.6.42; found by this project's vulnerability probes, not the
 *    reliability tests): resets a connection whose binary header announces a body above 1 GiB (see the
 *    end of this file). CHECK_TLS_FRAMES: the same check on what SSL_read returns, where memcached does
 *    TLS itself (its read() calls then carry ciphertext).
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
static size_t fd_slots; /* set once, by the first accept; read without the lock by read() */
#ifdef CHECK_BINARY_FRAMES
/* Where one accepted connection's binary framing is: header bytes seen so far, body bytes still to pass. */
struct framing {
  uint64_t skip;
  unsigned char header[24];
  unsigned char have;
  unsigned char tracked;
};
static struct framing *framing; /* what read() returns from each accepted socket */
#ifdef CHECK_TLS_FRAMES
static struct framing *tls_framing; /* what SSL_read returns for it */
#endif
#endif

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
  int ready = peers && fd_peer && fd_counted;
#ifdef CHECK_BINARY_FRAMES
  framing = calloc(fds, sizeof *framing);
  ready = ready && framing;
#ifdef CHECK_TLS_FRAMES
  tls_framing = calloc(fds, sizeof *tls_framing);
  ready = ready && tls_framing;
#endif
#endif
  if (!ready) {
    free(peers);
    free(fd_peer);
    free(fd_counted);
#ifdef CHECK_BINARY_FRAMES
    free(framing);
#ifdef CHECK_TLS_FRAMES
    free(tls_framing);
#endif
#endif
    return 0;
  }
  peer_mask = slots - 1;
  __atomic_store_n(&fd_slots, fds, __ATOMIC_RELEASE);
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

#ifdef CHECK_BINARY_FRAMES
/* An admitted connection starts at a frame boundary. A descriptor beyond the tables is left untracked. */
static void track_frames(int fd) {
  pthread_mutex_lock(&lock);
  if (tables_ready() && (size_t)fd < fd_slots) {
    framing[fd] = (struct framing){ .tracked = 1 };
#ifdef CHECK_TLS_FRAMES
    tls_framing[fd] = (struct framing){ .tracked = 1 };
#endif
  }
  pthread_mutex_unlock(&lock);
}
#endif

/* Counts a freshly accepted connection against its peer, or refuses it (error line, close, EAGAIN). */
static int admit(int fd, const struct sockaddr_storage *peer, socklen_t peer_length, struct sockaddr *address,
                 socklen_t *length) {
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
        inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? (const void *)&client.s6_addr[12] : (const void *)&client, text,
                  sizeof text);
        fprintf(stderr,
                "memcached-hardened: client %s holds %lu connections (MEMCACHED_MAX_CONNECTIONS_PER_CLIENT=%lu); "
                "refusing its new ones until it closes some\n",
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
#ifdef CHECK_BINARY_FRAMES
  if (fd >= 0) track_frames(fd);
#endif
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
#ifdef CHECK_BINARY_FRAMES
  /* The number may come back as a file or a pipe, whose reads are not frames. */
  if (fd >= 0 && (size_t)fd < fd_slots) framing[fd].tracked = 0;
#ifdef CHECK_TLS_FRAMES
  if (fd >= 0 && (size_t)fd < fd_slots) tls_framing[fd].tracked = 0;
#endif
#endif
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

int sasl_server_step(sasl_conn_t *conn, const char *clientin, unsigned clientinlen, const char **serverout,
                     unsigned *serveroutlen) {
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

#ifdef CHECK_BINARY_FRAMES
/*
 * memcached before 1.6.42 keeps a binary body length above 2^31 in a signed int: it does not swallow the
 * body and parses the bytes after the header as new commands (upstream 229cf41be). The guard follows each
 * accepted connection's binary framing (a 24-byte header, then the body length it announces) through
 * everything read() returns, and resets a connection whose header announces more than MAX_BODY: no
 * memcached item, SASL message or other request is that large (-I is at most 1 GiB, including the item's
 * own header). A connection whose frame does not start with the binary magic is left to memcached, which
 * refuses ASCII with SASL on and closes a binary connection at a bad magic.
 */
#define MAX_BODY (1024u * 1024u * 1024u)

/* Follows `n` bytes of a connection's stream; 0 when they complete a header that announces too much. */
static int frames_ok(struct framing *f, const unsigned char *bytes, size_t n) {
  for (size_t i = 0; i < n && f->tracked;) {
    if (f->skip > 0) {
      size_t take = f->skip < n - i ? (size_t)f->skip : n - i;
      f->skip -= take;
      i += take;
      continue;
    }
    f->header[f->have++] = bytes[i++];
    if (f->have == 1 && f->header[0] != 0x80) f->tracked = 0;
    if (f->have == sizeof f->header) {
      uint32_t body = (uint32_t)f->header[8] << 24 | (uint32_t)f->header[9] << 16 | (uint32_t)f->header[10] << 8 |
                      f->header[11];
      f->have = 0;
      if (body > MAX_BODY) return 0;
      f->skip = body;
    }
  }
  return 1;
}

/* The framing state of a tracked connection, or NULL. fd_slots is published after the tables are filled. */
static struct framing *tracked(struct framing *table, int fd) {
  size_t slots = __atomic_load_n(&fd_slots, __ATOMIC_ACQUIRE);
  return fd >= 0 && (size_t)fd < slots && table[fd].tracked ? &table[fd] : NULL;
}

/* Ends the connection as a peer reset would: memcached reads the error and closes it. */
static int reset(struct framing *f, int fd) {
  f->tracked = 0;
  shutdown(fd, SHUT_RDWR);
  errno = ECONNRESET;
  return -1;
}

ssize_t read(int fd, void *buffer, size_t count) {
  ssize_t n = REAL(read)(fd, buffer, count);
  struct framing *f = n > 0 ? tracked(framing, fd) : NULL;
  if (f && !frames_ok(f, buffer, (size_t)n)) return reset(f, fd);
  return n;
}

#ifdef CHECK_TLS_FRAMES
/* memcached's own TLS (1.6 -Z): OpenSSL reads the socket with read(), whose tracking stops at the first
 * ciphertext byte (not the binary magic); the frames are followed in the plaintext SSL_read returns. */
typedef struct ssl_st SSL;
int SSL_read(SSL *ssl, void *buffer, int count);
int SSL_get_fd(const SSL *ssl);

int SSL_read(SSL *ssl, void *buffer, int count) {
  int n = REAL(SSL_read)(ssl, buffer, count);
  int fd = n > 0 ? REAL(SSL_get_fd)(ssl) : -1;
  struct framing *f = tracked(tls_framing, fd);
  if (f && !frames_ok(f, buffer, (size_t)n)) return reset(f, fd);
  return n;
}
#endif
#endif
