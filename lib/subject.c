/* subject.c: written in this session. */
