"""What faces the network besides the channels: transport trust (TLS, client certificates, OIN allowlists)."""
