/* engine/server.h — `bootstorm serve`: worker threads, one io loop each, and
 * the services (HTTP, DHCP, TFTP) every worker runs; signals and graceful stop. */
#ifndef BOOTSTORM_ENGINE_SERVER_H
#define BOOTSTORM_ENGINE_SERVER_H

struct options;

/* Runs the server until SIGTERM/SIGINT; returns the process exit status
 * (0 after a clean stop, 1 when start-up failed with a logged reason). */
int server_run(const struct options *o);

#endif
