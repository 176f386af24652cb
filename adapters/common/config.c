/*
 * config.c - the INI keys every adapter's configuration has.
 *
 * once-gateway ([gateway]) and once-spool ([spool]) each read one INI file
 * with inih, like onced's once.conf. The keys naming the department, its
 * key, the broker and the state directory mean the same in both and are
 * read here; each adapter reads its own keys and calls
 * adapter_config_entry for the rest. Relative paths are relative to the
 * file's directory. Every value is checked; an unknown key is an error in
 * both, so a misspelt setting is never silently replaced by a default.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void adapter_ini_init(adapter_ini *ini, const char *config_path)
{
    const char *slash = strrchr(config_path, '/');

    memset(ini, 0, sizeof(*ini));
    if (slash == NULL)
        snprintf(ini->dir, sizeof(ini->dir), ".");
    else
        snprintf(ini->dir, sizeof(ini->dir), "%.*s",
                 (int)(slash - config_path), config_path);
    if (ini->dir[0] == '\0')
        snprintf(ini->dir, sizeof(ini->dir), "/");
}

int adapter_ini_path(adapter_ini *ini, char *out, const char *value)
{
    int n = value[0] == '/'
        ? snprintf(out, PATH_MAX, "%s", value)
        : snprintf(out, PATH_MAX, "%s/%s", ini->dir, value);

    if (n > 0 && n < PATH_MAX)
        return 1;
    snprintf(ini->problem, sizeof(ini->problem), "a path is too long");
    return 0;
}

static int ini_number(adapter_ini *ini, const char *name, const char *value,
                      unsigned long min, unsigned long max,
                      unsigned long *out)
{
    char *end;

    errno = 0;
    *out = strtoul(value, &end, 10);
    if (errno != 0 || *end != '\0' || value[0] == '\0' || value[0] == '-' ||
        *out < min || *out > max) {
        snprintf(ini->problem, sizeof(ini->problem), "%s must be %lu to %lu",
                 name, min, max);
        return 0;
    }
    return 1;
}

int adapter_ini_unsigned(adapter_ini *ini, const char *name,
                         const char *value, unsigned min, unsigned max,
                         unsigned *out)
{
    unsigned long n;

    if (!ini_number(ini, name, value, min, max, &n))
        return 0;
    *out = (unsigned)n;
    return 1;
}

int adapter_ini_size(adapter_ini *ini, const char *name, const char *value,
                     size_t min, size_t max, size_t *out)
{
    unsigned long n;

    if (!ini_number(ini, name, value, min, max, &n))
        return 0;
    *out = n;
    return 1;
}

static int set_text(adapter_ini *ini, const char *name, const char *value,
                    char *out, size_t cap)
{
    if (value[0] != '\0' && strlen(value) < cap) {
        memcpy(out, value, strlen(value) + 1);
        return 1;
    }
    snprintf(ini->problem, sizeof(ini->problem), "%s must be 1 to %zu "
             "characters", name, cap - 1);
    return 0;
}

int adapter_config_entry(adapter_ini *ini, adapter_config *cfg,
                         const char *name, const char *value)
{
    if (strcmp(name, "department") == 0)
        return set_text(ini, name, value, cfg->department,
                        sizeof(cfg->department));
    if (strcmp(name, "key") == 0)
        return adapter_ini_path(ini, cfg->key_path, value);
    if (strcmp(name, "broker") == 0) {
        if ((strncmp(value, "tcp://", 6) != 0 &&
             strncmp(value, "ipc://", 6) != 0) ||
            strlen(value) >= sizeof(cfg->broker_endpoint)) {
            snprintf(ini->problem, sizeof(ini->problem), "broker must be "
                     "tcp://HOST:PORT or ipc://PATH");
            return 0;
        }
        snprintf(cfg->broker_endpoint, sizeof(cfg->broker_endpoint), "%s",
                 value);
        return 1;
    }
    if (strcmp(name, "broker_key") == 0)
        return adapter_ini_path(ini, cfg->broker_key_path, value);
    if (strcmp(name, "log_origin") == 0)
        return set_text(ini, name, value, cfg->log_origin,
                        sizeof(cfg->log_origin));
    if (strcmp(name, "state_directory") == 0)
        return adapter_ini_path(ini, cfg->state_dir, value);
    if (strcmp(name, "timeout_ms") == 0)
        return adapter_ini_unsigned(ini, name, value, 100, 600000,
                                    &cfg->timeout_ms);
    if (strcmp(name, "idempotency_hours") == 0)
        return adapter_ini_unsigned(ini, name, value, 1, 24 * 366,
                                    &cfg->idempotency_hours);
    return -1;
}

int adapter_config_check(adapter_ini *ini, const adapter_config *cfg)
{
    if (cfg->department[0] != '\0' && cfg->key_path[0] != '\0' &&
        cfg->broker_endpoint[0] != '\0' && cfg->broker_key_path[0] != '\0' &&
        cfg->state_dir[0] != '\0')
        return 0;
    snprintf(ini->problem, sizeof(ini->problem), "department, key, broker, "
             "broker_key and state_directory are required");
    return -1;
}
