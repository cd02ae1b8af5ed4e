/* bench/load/report.h — the storm's results: per-machine timelines, the
 * per-stage table, --json, --csv and the --svg picture. */
#ifndef BOOTSTORM_LOAD_REPORT_H
#define BOOTSTORM_LOAD_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum report_stage {
    REPORT_DHCP = 0,
    REPORT_TFTP,
    REPORT_KERNEL,
    REPORT_INITRD,
    REPORT_DHCP2,
    REPORT_KS,
    REPORT_STAGE2,
    REPORT_RPMS,
    REPORT_CALLBACK,
    REPORT_STAGES
};
const char *report_stage_name(enum report_stage s);
/* -1 when unknown */
int report_stage_by_name(const char *name);

enum report_st_state {
    REPORT_ST_NONE = 0, /* not reached (or not asked) */
    REPORT_ST_RUNNING,
    REPORT_ST_OK,
    REPORT_ST_FAILED,
    REPORT_ST_SKIPPED, /* asked, but nothing to do (e.g. no callback token) */
};
const char *report_st_state_name(enum report_st_state s);

struct report_mstage {
    uint8_t state; /* enum report_st_state */
    uint64_t start_ns, end_ns;
    uint64_t bytes;
    uint32_t retries, timeouts, requests;
};

struct report_machine {
    unsigned idx;
    char mac[18];
    uint32_t ip; /* network order */
    uint64_t start_ns, end_ns;
    bool booted;
    int failed_stage; /* -1: none */
    char reason[200];
    struct report_mstage st[REPORT_STAGES];
};

/* Things worth saying once with a count ("no boot configuration found" x200). */
#define REPORT_NOTES_MAX 32
struct report_notes {
    struct {
        int stage;
        char text[160];
        uint64_t count;
    } n[REPORT_NOTES_MAX];
    unsigned count;
};
void report_note(struct report_notes *notes, int stage, const char *text);

struct report_out {
    const char *json, *csv, *svg;
};

struct report_run {
    unsigned machines;
    unsigned stages;      /* mask of 1 << enum report_stage */
    uint64_t t0, t_end;   /* start of the storm; when the report was made */
    unsigned booted, failed, not_started;
    bool interrupted;
    double client_cpu_s;  /* CPU time bootstorm-load itself used (user + system) */
    char settings[512];   /* one line: the options that shape the result */
};

/* The table, the failure and note summaries (to f). */
void report_storm_text(FILE *f, const struct report_run *run, const struct report_machine *ms,
                       const struct report_notes *notes);
/* Writes each file asked for; returns false (message on stderr) when one fails. */
bool report_storm_files(const struct report_out *out, const struct report_run *run, const struct report_machine *ms,
                        const struct report_notes *notes);

#endif
