/* The pod sandbox's process, after Kubernetes' build/pause/linux/pause.c: holds the pod's
 * namespaces, reaps orphaned children (it is PID 1 of the pod when the PID namespace is
 * shared) and exits promptly on SIGINT or SIGTERM. Built with gcc -static -Os. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION "3.10"
#endif

static void sigdown(int signo) {
    psignal(signo, "Shutting down, got signal");
    exit(0);
}

static void sigreap(int signo) {
    (void)signo;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; ++i) {
        if (!strcasecmp(argv[i], "-v")) {
            printf("pause.c %s (kubeling)\n", VERSION);
            return 0;
        }
    }
    if (getpid() != 1) {
        /* Not an error: a pause run by hand still works. */
        fprintf(stderr, "Warning: pause should be the first process\n");
    }
    if (sigaction(SIGINT, &(struct sigaction){.sa_handler = sigdown}, NULL) < 0)
        return 1;
    if (sigaction(SIGTERM, &(struct sigaction){.sa_handler = sigdown}, NULL) < 0)
        return 2;
    if (sigaction(SIGCHLD, &(struct sigaction){.sa_handler = sigreap, .sa_flags = SA_NOCLDSTOP}, NULL) < 0)
        return 3;
    for (;;)
        pause();
    fprintf(stderr, "Error: infinite loop terminated\n");
    return 42;
}
