/*
 * port_hooks: see include/ibvhost/port_hooks.h.
 *
 * Every hook is a no-op: this build records the control-plane state of a
 * port (src/vhost.c) but does not move frames. The data path replaces
 * these bodies; the call sites stay where they are.
 */
#include "ibvhost/port_hooks.h"

#include "ibvhost/port.h"

int port_hook_port_added(struct port *p)
{
	(void)p;
	return 0;
}

void port_hook_port_removed(struct port *p)
{
	(void)p;
}

int port_hook_device_ready(struct port *p, int vid)
{
	(void)p;
	(void)vid;
	return 0;
}

void port_hook_device_stop(struct port *p, int vid)
{
	(void)p;
	(void)vid;
}

void port_hook_vring_state(struct port *p, int vid, uint16_t queue,
			   bool enabled)
{
	(void)p;
	(void)vid;
	(void)queue;
	(void)enabled;
}
