"""circusctl's building blocks: the command table, ``set`` value conversion, reply rendering,
the event listener and the interactive shell. The entry point is :mod:`circus.circusctl`."""
