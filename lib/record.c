/* record.c: written in this session. */
