"""loket-adapter: koppeling between the Omgevingsloket and a zaaksysteem."""

__version__ = "0.1.0"
