"""The certificate of a calibration run: its record (the data an assessor relies on), the
HTML report and the DCC made from it. Pure: shared by the bench (``calibration``) and the
gateway, which imports nothing of the other."""
