"""VISA/SCPI instruments through pyvisa: profiles as data, one worker thread per session."""
