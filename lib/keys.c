/* keys.c: written in this session. */
