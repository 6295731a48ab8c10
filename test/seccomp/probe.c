/*
 * The seccomp probe (test/integration/seccomp.test.ts): makes calls memcached never needs, each in a child
 * of its own, with arguments the kernel refuses *after* seccomp for a reason of its own (an unknown flag,
 * a missing path, no such process, an invalid socket type), and prints one line per call: its name and
 * "EPERM" or what else the kernel answered. Under the image's profile every line says EPERM (seccomp's
 * answer); where seccomp lets the call through, the kernel's own answer shows instead.
 * Built static on the test host (gcc -static), bind-mounted into the container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_PACKET
#define AF_PACKET 17
#endif

static long call(const char *name) {
  if (!strcmp(name, "unshare")) return unshare(0x1);                      /* not a CLONE_ flag: EINVAL */
  if (!strcmp(name, "mount")) return mount("none", "/nonexistent-seccomp-probe", "tmpfs", 0, 0); /* ENOENT */
  if (!strcmp(name, "ptrace")) return ptrace(PTRACE_PEEKDATA, 2147483647, 0, 0); /* no such process */
  if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, 0x7fff, 0, 0, 0, 0); /* unknown operation */
  if (!strcmp(name, "bpf")) return syscall(SYS_bpf, 0x7fff, 0, 0);             /* unknown command */
  if (!strcmp(name, "socket-packet")) return socket(AF_PACKET, 11, 0);         /* type >= SOCK_MAX: EINVAL */
  if (!strcmp(name, "personality")) return personality(0xffffffff);            /* a query: succeeds */
  if (!strcmp(name, "io_uring_setup")) return syscall(SYS_io_uring_setup, 0, 0); /* no entries: EINVAL */
  errno = ENOSYS;
  return -1;
}

int main(void) {
  static const char *names[] = {"unshare", "mount", "ptrace", "keyctl", "bpf", "socket-packet", "personality",
                                "io_uring_setup"};
  for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
    int out[2];
    if (pipe(out)) return 2;
    pid_t pid = fork();
    if (pid == 0) {
      errno = 0;
      long result = call(names[i]);
      int error = result < 0 ? errno : 0;
      if (write(out[1], &error, sizeof error) != sizeof error) _exit(2);
      _exit(0);
    }
    int error = -1, status = 0;
    close(out[1]);
    if (pid < 0 || read(out[0], &error, sizeof error) != sizeof error) error = -1;
    close(out[0]);
    if (pid > 0) waitpid(pid, &status, 0);
    if (error == EPERM) printf("%s EPERM\n", names[i]);
    else if (error == 0) printf("%s ok\n", names[i]);
    else if (error < 0) printf("%s no-answer\n", names[i]);
    else printf("%s errno-%d\n", names[i], error);
  }
  return 0;
}
