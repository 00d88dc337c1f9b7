"""Line-based ASCII instruments on a serial port or a TCP serial server, on pyserial."""
