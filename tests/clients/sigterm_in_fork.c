/*
 * sigterm_in_fork.c — for tests/test_forks.py: a SIGTERM that reaches a new
 * child inside fork(), before any Python code of the child has run (the
 * instant a CI timeout's kill of the process group, or a pool's terminate(),
 * can land in).  A pthread_atfork child handler runs there: in the new child,
 * after the kernel made it and before fork() returns to Python.  Python cannot
 * run code of its own in that instant, so the test arms this one.
 *
 *   arm()     send SIGTERM to every child forked from now on, from inside fork()
 *   disarm()  stop (the children already forked keep their copy: armed)
 */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t armed;
static int registered;

static void sigterm_new_child(void) {
    if (armed)
        kill(getpid(), SIGTERM);
}

int arm(void) {
    if (!registered) {
        if (pthread_atfork(NULL, NULL, sigterm_new_child) != 0)
            return -1;
        registered = 1;
    }
    armed = 1;
    return 0;
}

void disarm(void) { armed = 0; }
