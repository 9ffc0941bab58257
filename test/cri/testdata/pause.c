/* SPDX-License-Identifier: Apache-2.0
 * The pod sandbox's process, built static by the test: it holds the pod's
 * namespaces, reaps what is re-parented to it and exits on TERM or INT
 * (as pid 1 of its namespace it would otherwise ignore them). */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) ; }

int main(void)
{
	signal(SIGTERM, quit);
	signal(SIGINT, quit);
	signal(SIGCHLD, reap);
	for (;;)
		pause();
}
