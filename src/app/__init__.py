"""Floor 6, composition: the ``etalon`` command, the demo, and the wiring of the libraries below
(drivers, edge_agent, gateway) into processes. Nothing below imports it."""
