"""StUF-ZKN 0310 target (Zaak- en Documentservices 1.1 and 1.2): SOAP calls to a ZDS zaaksysteem."""
