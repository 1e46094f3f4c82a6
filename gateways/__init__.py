"""Message text, SMPP, CBC REST clients, channel mapping, and network simulators."""
