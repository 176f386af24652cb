/* client.c: written in this session. */
