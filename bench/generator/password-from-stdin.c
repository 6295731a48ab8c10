/*
 * memcslap (libmemcached 1.1) takes its SASL password only as --password=VALUE, and a command line is
 * readable by every process on the host. Preloaded, this constructor runs before memcslap's main():
 * where the command line says "--password=-", it reads the password from stdin and hands main() a copy
 * holding it, while /proc/PID/cmdline keeps showing "-".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLACEHOLDER "--password=-"
#define PREFIX "--password="

__attribute__((constructor)) static void password_from_stdin(int argc, char **argv, char **envp) {
  (void)envp;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], PLACEHOLDER) != 0) continue;
    char line[4096];
    if (fgets(line, sizeof line, stdin) == NULL) {
      fputs("password-from-stdin: no password on stdin\n", stderr);
      exit(2);
    }
    line[strcspn(line, "\n")] = '\0';
    char *argument = malloc(strlen(PREFIX) + strlen(line) + 1);
    if (argument == NULL) exit(2);
    strcpy(argument, PREFIX);
    strcat(argument, line);
    argv[i] = argument;
    memset(line, 0, sizeof line);
    return;
  }
}
