"""OPC UA instruments through asyncua: polling and subscriptions, security, reconnect."""
