"""One module per capcast command or command group; each has ``register(commands)``."""
