/* tests/unit/proto/test_tftp_send.c — the TFTP sender state machine (proto/tftp_send.h):
 * windows, loss, reordering, duplicate ACKs, timeouts, rollover, OVMF's abort. */
#include <criterion/criterion.h>
#include <string.h>

#include "proto/tftp_send.h"

static struct tftp_send mk(uint64_t size, uint32_t bs, uint32_t window, bool oack)
{
    struct tftp_send s;
    struct tftp_send_config c = {.size = size, .blksize = bs, .window = window, .oack = oack};
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_OK);
    return s;
}

#define EXPECT_DATA(a, f, n)                                                                     \
    do {                                                                                         \
        cr_assert_eq((a).count, (uint64_t)(n), "count %llu", (unsigned long long)(a).count);     \
        if ((n) > 0)                                                                             \
            cr_assert_eq((a).first, (uint64_t)(f), "first %llu", (unsigned long long)(a).first); \
    } while (0)

Test(tftp_send, config_validation)
{
    struct tftp_send s;
    struct tftp_send_config c = {.size = 1, .blksize = 512, .window = 1};
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_OK);
    cr_assert_eq(s.cfg.rto_ms, TFTP_SEND_RTO_MS);
    cr_assert_eq(s.cfg.rto_max_ms, TFTP_SEND_RTO_MAX_MS);
    cr_assert_eq(s.cfg.retries, TFTP_SEND_RETRIES);
    c.blksize = 7;
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_EINVAL);
    c.blksize = 65465;
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_EINVAL);
    c.blksize = 512, c.window = 0;
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_EINVAL);
    c.window = TFTP_WINDOWSIZE_MAX + 1;
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_EINVAL);
    c.window = 1, c.rto_ms = 500, c.rto_max_ms = 100;
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_EINVAL);
}

Test(tftp_send, blocks_offsets_and_exact_multiples)
{
    struct tftp_send s = mk(1000, 512, 1, false);
    cr_assert_eq(s.nblocks, 2);
    cr_assert_eq(tftp_send_block_offset(&s, 2), 512);
    cr_assert_eq(tftp_send_block_len(&s, 1), 512);
    cr_assert_eq(tftp_send_block_len(&s, 2), 488);
    s = mk(1024, 512, 1, false);
    cr_assert_eq(s.nblocks, 3, "exact multiple ends with an empty block");
    cr_assert_eq(tftp_send_block_offset(&s, 3), 1024);
    cr_assert_eq(tftp_send_block_len(&s, 3), 0);
    s = mk(0, 1468, 4, false);
    cr_assert_eq(s.nblocks, 1, "0-byte file is one empty DATA");
    cr_assert_eq(tftp_send_block_len(&s, 1), 0);
    cr_assert_eq(tftp_send_block_wire(65535), 65535);
    cr_assert_eq(tftp_send_block_wire(65536), 0);
    cr_assert_eq(tftp_send_block_wire(65537), 1);
}

Test(tftp_send, lockstep_no_oack)
{
    struct tftp_send s = mk(1024, 512, 1, false);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    cr_assert_not(a.send_oack);
    EXPECT_DATA(a, 1, 1);
    cr_assert_eq(a.timer, TFTP_SEND_TIMER_ARM);
    cr_assert_eq(a.timer_ms, 200);
    tftp_send_on_ack(&s, 0, &a); /* no OACK was sent: ACK 0 is old news */
    EXPECT_DATA(a, 0, 0);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_DUP_ACK);
    cr_assert_eq(a.timer, TFTP_SEND_TIMER_KEEP);
    tftp_send_on_ack(&s, 1, &a);
    EXPECT_DATA(a, 2, 1);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_PROGRESS);
    tftp_send_on_ack(&s, 1, &a); /* sorcerer's apprentice: no second DATA 2 */
    EXPECT_DATA(a, 0, 0);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_DUP_ACK);
    tftp_send_on_ack(&s, 2, &a);
    EXPECT_DATA(a, 3, 1);
    cr_assert_eq(tftp_send_block_len(&s, 3), 0);
    cr_assert_eq(a.outcome, TFTP_SEND_RUNNING);
    tftp_send_on_ack(&s, 3, &a);
    EXPECT_DATA(a, 0, 0);
    cr_assert_eq(a.outcome, TFTP_SEND_DONE);
    cr_assert_eq(a.timer, TFTP_SEND_TIMER_STOP);
    cr_assert_eq(s.blocks_sent, 3);
    cr_assert_eq(s.blocks_resent, 0);
    cr_assert_eq(s.dup_acks, 2);
    tftp_send_on_ack(&s, 3, &a);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_IGNORED);
    cr_assert_eq(a.outcome, TFTP_SEND_DONE);
    tftp_send_on_timeout(&s, &a);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_IGNORED);
    EXPECT_DATA(a, 0, 0);
}

Test(tftp_send, zero_byte_file)
{
    struct tftp_send s = mk(0, 512, 16, true);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    cr_assert(a.send_oack);
    EXPECT_DATA(a, 0, 0);
    tftp_send_on_ack(&s, 0, &a);
    EXPECT_DATA(a, 1, 1);
    tftp_send_on_ack(&s, 1, &a);
    cr_assert_eq(a.outcome, TFTP_SEND_DONE);
}

Test(tftp_send, oack_then_windows)
{
    /* 10 full blocks + 100 bytes = 11 blocks, window 4 */
    struct tftp_send s = mk(10 * 512 + 100, 512, 4, true);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    cr_assert(a.send_oack);
    EXPECT_DATA(a, 0, 0);
    tftp_send_on_ack(&s, 1, &a); /* nothing sent yet: not acceptable */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_FUTURE_ACK);
    EXPECT_DATA(a, 0, 0);
    tftp_send_on_ack(&s, 0, &a);
    EXPECT_DATA(a, 1, 4);
    cr_assert_not(a.send_oack);
    tftp_send_on_ack(&s, 4, &a);
    EXPECT_DATA(a, 5, 4);
    tftp_send_on_ack(&s, 8, &a);
    EXPECT_DATA(a, 9, 3);
    cr_assert_eq(tftp_send_block_len(&s, 11), 100);
    tftp_send_on_ack(&s, 11, &a);
    cr_assert_eq(a.outcome, TFTP_SEND_DONE);
    cr_assert_eq(s.blocks_sent, 11);
}

/* OVMF: tsize+blksize+windowsize, OACK, then ERROR 8 as a size probe. */
Test(tftp_send, ovmf_size_probe_aborts_at_once)
{
    struct tftp_send s = mk(1007584, 1468, 4, true);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    cr_assert(a.send_oack);
    tftp_send_on_error(&s, TFTP_ERR_OPTION, &a);
    cr_assert_eq(a.outcome, TFTP_SEND_ABORTED);
    cr_assert_eq(s.outcome, TFTP_SEND_ABORTED);
    cr_assert_eq(s.error_code, 8);
    cr_assert_eq(a.timer, TFTP_SEND_TIMER_STOP);
    EXPECT_DATA(a, 0, 0);
    cr_assert_str_eq(tftp_send_outcome_str(s.outcome), "client aborted");
    tftp_send_on_ack(&s, 0, &a);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_IGNORED);
    EXPECT_DATA(a, 0, 0);
    tftp_send_on_timeout(&s, &a);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_IGNORED);
    cr_assert_not(a.send_oack);
    tftp_send_on_error(&s, 0, &a);
    cr_assert_eq(s.error_code, 8, "first error stands");
}

Test(tftp_send, gap_resends_from_the_gap_at_once)
{
    struct tftp_send s = mk(100 * 512, 512, 4, false);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    EXPECT_DATA(a, 1, 4);
    tftp_send_on_ack(&s, 2, &a); /* block 3 lost: client acks the last in-order block */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_GAP);
    EXPECT_DATA(a, 3, 4); /* 3,4 again + 5,6 new */
    cr_assert_eq(a.timer, TFTP_SEND_TIMER_ARM);
    cr_assert_eq(s.blocks_resent, 2);
    cr_assert_eq(s.sent_hi, 6);
    tftp_send_on_ack(&s, 2, &a); /* the same ACK again: no second resend */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_DUP_ACK);
    EXPECT_DATA(a, 0, 0);
    cr_assert_eq(a.timer, TFTP_SEND_TIMER_KEEP);
    tftp_send_on_ack(&s, 6, &a);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_PROGRESS);
    EXPECT_DATA(a, 7, 4);
    cr_assert_eq(s.blocks_resent, 2);
}

Test(tftp_send, old_future_and_reordered_acks)
{
    struct tftp_send s = mk(100 * 512, 512, 4, false);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    tftp_send_on_ack(&s, 9, &a); /* beyond anything sent */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_FUTURE_ACK);
    EXPECT_DATA(a, 0, 0);
    tftp_send_on_ack(&s, 65535, &a); /* "block -1": old */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_OLD_ACK);
    tftp_send_on_ack(&s, 4, &a);
    EXPECT_DATA(a, 5, 4);
    tftp_send_on_ack(&s, 3, &a); /* reordered: arrives after ACK 4 */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_OLD_ACK);
    EXPECT_DATA(a, 0, 0);
    cr_assert_eq(s.acked, 4);
    /* ACKs 6 then 8 cross on the wire as 8 then 6 */
    tftp_send_on_ack(&s, 8, &a);
    EXPECT_DATA(a, 9, 4);
    tftp_send_on_ack(&s, 6, &a);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_OLD_ACK);
    EXPECT_DATA(a, 0, 0);
    cr_assert_eq(s.acked, 8);
    cr_assert_eq(s.sent_hi, 12);
    cr_assert_eq(s.dup_acks, 4);
    cr_assert_eq(s.blocks_resent, 0);
}

Test(tftp_send, timeout_backoff_and_reset)
{
    struct tftp_send s = mk(100 * 512, 512, 4, false);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    cr_assert_eq(a.timer_ms, 200);
    static const uint32_t next[] = {400, 800, 1600, 3200, 3200};
    for (unsigned i = 0; i < 5; i++) {
        tftp_send_on_timeout(&s, &a);
        cr_assert_eq(a.note, TFTP_SEND_NOTE_RETRANSMIT);
        EXPECT_DATA(a, 1, 4);
        cr_assert_eq(a.timer, TFTP_SEND_TIMER_ARM);
        cr_assert_eq(a.timer_ms, next[i], "timeout %u", i);
    }
    cr_assert_eq(s.blocks_resent, 20);
    cr_assert_eq(s.stale, 4, "copies in flight, capped at the window");
    /* progress resets the timer; block 4 is still on its way (five copies), so
     * only the new blocks 5..7 go out */
    tftp_send_on_ack(&s, 3, &a);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_PROGRESS);
    EXPECT_DATA(a, 5, 3);
    cr_assert_eq(a.timer_ms, 200);
    cr_assert_eq(s.tries, 0);
    tftp_send_on_timeout(&s, &a); /* resend from the oldest unacked block */
    EXPECT_DATA(a, 4, 4);
    cr_assert_eq(a.timer_ms, 400);
    cr_assert_eq(s.timeouts, 6);
}

Test(tftp_send, gives_up_after_retries)
{
    struct tftp_send s = mk(1000, 512, 1, false);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    for (unsigned i = 0; i < TFTP_SEND_RETRIES; i++) {
        tftp_send_on_timeout(&s, &a);
        EXPECT_DATA(a, 1, 1);
        cr_assert_eq(a.outcome, TFTP_SEND_RUNNING);
    }
    tftp_send_on_timeout(&s, &a);
    cr_assert_eq(a.outcome, TFTP_SEND_TIMEOUT, "block 2 never sent: a failure");
    cr_assert_eq(a.timer, TFTP_SEND_TIMER_STOP);
    EXPECT_DATA(a, 0, 0);
}

Test(tftp_send, oack_unanswered_times_out)
{
    struct tftp_send s = mk(1000, 1468, 4, true);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    for (unsigned i = 0; i < TFTP_SEND_RETRIES; i++) {
        tftp_send_on_timeout(&s, &a);
        cr_assert(a.send_oack);
        EXPECT_DATA(a, 0, 0);
    }
    tftp_send_on_timeout(&s, &a);
    cr_assert_not(a.send_oack);
    cr_assert_eq(a.outcome, TFTP_SEND_TIMEOUT);
}

/* The final ACK lost and the client gone: completed, unconfirmed (dnsmasq-tolerant). */
Test(tftp_send, final_ack_missing)
{
    struct tftp_send s = mk(1000, 512, 1, false);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    tftp_send_on_ack(&s, 1, &a);
    EXPECT_DATA(a, 2, 1);
    for (unsigned i = 0; i < TFTP_SEND_RETRIES; i++) {
        tftp_send_on_timeout(&s, &a);
        EXPECT_DATA(a, 2, 1);
    }
    tftp_send_on_timeout(&s, &a);
    cr_assert_eq(a.outcome, TFTP_SEND_DONE_UNACKED);
    cr_assert_eq(s.acked, 1);
    cr_assert_str_eq(tftp_send_outcome_str(a.outcome), "completed, final ACK missing");
}

/* The client's timeout option does not delay the first resend; it only raises the
 * give-up time to at least twice its value without progress. */
Test(tftp_send, client_timeout_raises_give_up_only)
{
    struct tftp_send s;
    struct tftp_send_config c = {.size = 5000, .blksize = 512, .window = 1, .client_timeout_s = 10};
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_OK);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    cr_assert_eq(a.timer_ms, 200);
    /* timers expire after 200,400,800,1600,3200,3200,... ms: 20 s is reached at the 10th */
    unsigned n = 0;
    do {
        tftp_send_on_timeout(&s, &a);
        n++;
    } while (a.outcome == TFTP_SEND_RUNNING && n < 100);
    cr_assert_eq(n, 10);
    cr_assert_eq(a.outcome, TFTP_SEND_TIMEOUT);
    cr_assert_geq(s.idle_ms, 20000);
}

/* 33 MiB at blksize 512: 67584 full blocks + the empty one; wire numbers roll over
 * 65535 → 0 and the client's ACKs (16-bit) are mapped back correctly. */
static void run_perfect(uint64_t size, uint32_t bs, uint32_t w)
{
    struct tftp_send s = mk(size, bs, w, true);
    struct tftp_send_actions a;
    uint64_t expect = 1, wire_zero_blocks = 0, events = 0;
    tftp_send_start(&s, &a);
    tftp_send_on_ack(&s, 0, &a);
    while (a.outcome == TFTP_SEND_RUNNING) {
        cr_assert_eq(a.first, expect, "no block skipped or repeated");
        cr_assert_leq(a.count, w);
        for (uint64_t k = a.first; k < a.first + a.count; k++)
            wire_zero_blocks += tftp_send_block_wire(k) == 0;
        expect = a.first + a.count;
        tftp_send_on_ack(&s, tftp_send_block_wire(expect - 1), &a);
        cr_assert(a.note == TFTP_SEND_NOTE_PROGRESS);
        events++;
    }
    cr_assert_eq(a.outcome, TFTP_SEND_DONE);
    cr_assert_eq(s.acked, s.nblocks);
    cr_assert_eq(expect - 1, s.nblocks);
    cr_assert_eq(s.blocks_sent, s.nblocks);
    cr_assert_eq(s.blocks_resent, 0);
    cr_assert_eq(wire_zero_blocks, s.nblocks / 65536);
    cr_assert_eq(events, (s.nblocks + w - 1) / w);
}

Test(tftp_send, rollover_33mib_blksize_512)
{
    uint64_t size = 33ull << 20;
    struct tftp_send s = mk(size, 512, 1, false);
    cr_assert_eq(s.nblocks, 67585);
    cr_assert_eq(tftp_send_block_len(&s, 67585), 0);
    cr_assert_eq(tftp_send_block_offset(&s, 65536), 65535ull * 512);
    run_perfect(size, 512, 1);
    run_perfect(size, 512, 16);
    run_perfect(size + 100, 512, 7);
}

Test(tftp_send, rollover_65mib_grub_blksize_1024)
{
    run_perfect(65ull << 20, 1024, 1);
    run_perfect(65ull << 20, 1024, 4);
}

/* Loss and duplicates right at the wrap: ACK 0 means block 65536 there. */
Test(tftp_send, rollover_gap_and_duplicates)
{
    struct tftp_send s = mk(40ull << 20, 512, 8, false);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    for (uint64_t k = 8; k <= 65528; k += 8)
        tftp_send_on_ack(&s, tftp_send_block_wire(k), &a);
    cr_assert_eq(s.acked, 65528);
    EXPECT_DATA(a, 65529, 8); /* wires 65529..65535, 0 */
    tftp_send_on_ack(&s, 0, &a);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_PROGRESS);
    cr_assert_eq(s.acked, 65536);
    EXPECT_DATA(a, 65537, 8); /* wires 1..8 */
    tftp_send_on_ack(&s, 3, &a); /* block 65540 (wire 4) lost */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_GAP);
    cr_assert_eq(s.acked, 65539);
    EXPECT_DATA(a, 65540, 8);
    cr_assert_eq(s.stale, 5, "65540..65544 were copies");
    tftp_send_on_ack(&s, 65535, &a); /* block 65535's ACK, late */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_OLD_ACK);
    tftp_send_on_ack(&s, 3, &a); /* the rest of the client's out-of-order reports */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_DUP_ACK);
    EXPECT_DATA(a, 0, 0);
    tftp_send_on_ack(&s, 12, &a); /* block 65548 > sent_hi 65547 */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_FUTURE_ACK);
    tftp_send_on_ack(&s, 11, &a);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_PROGRESS);
    cr_assert_eq(s.acked, 65547);
    EXPECT_DATA(a, 65548, 8);
}

/* EDK2 reports every out-of-order block with its position: when the first block of a
 * window is lost, all it sends is the previous ACK again.  Resend once, not per copy. */
Test(tftp_send, first_block_of_window_lost)
{
    struct tftp_send s = mk(100 * 512, 512, 4, false);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    tftp_send_on_ack(&s, 4, &a);
    EXPECT_DATA(a, 5, 4);
    tftp_send_on_ack(&s, 4, &a); /* 5 lost; 6, 7, 8 each reported as "have 4" */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_GAP);
    EXPECT_DATA(a, 5, 4);
    cr_assert_eq(a.timer, TFTP_SEND_TIMER_KEEP, "no progress: the timer runs on");
    tftp_send_on_ack(&s, 4, &a);
    EXPECT_DATA(a, 0, 0);
    tftp_send_on_ack(&s, 4, &a);
    EXPECT_DATA(a, 0, 0);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_DUP_ACK);
    tftp_send_on_ack(&s, 8, &a);
    EXPECT_DATA(a, 9, 4);
    cr_assert_eq(s.blocks_resent, 4);
}

/* A client repeating the same ACK forever is answered at most once per window of
 * repeats, and still gives up on the timer's schedule. */
Test(tftp_send, endless_duplicates_still_time_out)
{
    struct tftp_send s = mk(100 * 512, 512, 4, false);
    struct tftp_send_actions a;
    uint64_t resends = 0;
    tftp_send_start(&s, &a);
    for (unsigned t = 0; t <= TFTP_SEND_RETRIES; t++) {
        for (unsigned i = 0; i < 50; i++) {
            tftp_send_on_ack(&s, 0, &a);
            resends += a.count;
            cr_assert_neq(a.timer, TFTP_SEND_TIMER_ARM);
        }
        tftp_send_on_timeout(&s, &a);
    }
    cr_assert_eq(s.outcome, TFTP_SEND_TIMEOUT);
    cr_assert_leq(resends, 7u * (50 / 5 + 1) * 4, "at most one window per 5 repeats");
}

/* Reordering: 2 arrives before 1.  Without the budget each report would restart the
 * window and the copies would trigger more reports (seen at 5-15x in simulation). */
Test(tftp_send, reordering_does_not_snowball)
{
    struct tftp_send s = mk(100 * 512, 512, 4, false);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    EXPECT_DATA(a, 1, 4);
    tftp_send_on_ack(&s, 0, &a); /* client saw 2 first */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_GAP);
    EXPECT_DATA(a, 1, 4);
    cr_assert_eq(s.stale, 4);
    tftp_send_on_ack(&s, 1, &a); /* then 1 (in order) and 3 (out of order: 2 was dropped) */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_PROGRESS, "explained by the copies in flight");
    EXPECT_DATA(a, 5, 1); /* only the new block */
    tftp_send_on_ack(&s, 1, &a); /* 4 reported */
    EXPECT_DATA(a, 0, 0);
    tftp_send_on_ack(&s, 1, &a); /* copy of 1 reported */
    EXPECT_DATA(a, 0, 0);
    tftp_send_on_ack(&s, 5, &a); /* copies 2, 3, 4 and block 5 complete the window */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_PROGRESS);
    EXPECT_DATA(a, 6, 4);
    cr_assert_eq(s.stale, 0, "cut to the latest send's copies (none)");
    cr_assert_eq(s.blocks_resent, 4);
    cr_assert_eq(s.blocks_sent, 13);
}

/* A resent OACK may be acknowledged twice: the second ACK 0 must not resend DATA. */
Test(tftp_send, oack_resent_then_two_ack0)
{
    struct tftp_send s = mk(100 * 512, 512, 4, true);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    tftp_send_on_timeout(&s, &a);
    cr_assert(a.send_oack);
    tftp_send_on_ack(&s, 0, &a);
    EXPECT_DATA(a, 1, 4);
    tftp_send_on_ack(&s, 0, &a);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_DUP_ACK);
    EXPECT_DATA(a, 0, 0);
    tftp_send_on_ack(&s, 0, &a); /* a third one is news: block 1 is missing */
    cr_assert_eq(a.note, TFTP_SEND_NOTE_GAP);
    EXPECT_DATA(a, 1, 4);
}

/* RFC 1350 lock-step client that ACKs every DATA it gets, duplicates included: after
 * one spurious timeout the classic bug sends every later block twice. */
Test(tftp_send, no_sorcerers_apprentice)
{
    struct tftp_send s = mk(50 * 512, 512, 1, false);
    struct tftp_send_actions a;
    tftp_send_start(&s, &a);
    tftp_send_on_timeout(&s, &a); /* DATA 1 was only slow */
    EXPECT_DATA(a, 1, 1);
    for (uint16_t k = 1; k <= 50; k++) {
        tftp_send_on_ack(&s, k, &a); /* from the first copy */
        EXPECT_DATA(a, k + 1, 1);
        tftp_send_on_ack(&s, k, &a); /* from the second copy (only k == 1 has one) */
        EXPECT_DATA(a, 0, 0);
    }
    tftp_send_on_ack(&s, 51, &a);
    cr_assert_eq(a.outcome, TFTP_SEND_DONE);
    cr_assert_eq(s.blocks_sent, 52);
}

/* ---- a lossy, reordering network with an RFC 7440 client ---- */

struct rng {
    uint64_t x;
};
static uint32_t rnd(struct rng *r)
{
    r->x ^= r->x << 13;
    r->x ^= r->x >> 7;
    r->x ^= r->x << 17;
    return (uint32_t)(r->x >> 11);
}
static bool chance(struct rng *r, unsigned pct) { return rnd(r) % 100 < pct; }

struct client {
    uint64_t expect; /* next block wanted (64-bit; the wire only carries 16 bits) */
    uint32_t since_ack;
    bool done;
};

/* The receiver of RFC 7440 §4: ACK after `window` in-order blocks or the last one;
 * on an out-of-order or repeated block, ACK the last in-order block. */
static int client_on_data(struct client *c, uint16_t wire, uint32_t len, uint32_t bs, uint32_t w,
                          uint16_t *ack)
{
    if (wire == (uint16_t)c->expect) {
        c->expect++;
        c->since_ack++;
        if (len < bs)
            c->done = true;
        if (len < bs || c->since_ack == w) {
            c->since_ack = 0;
            *ack = (uint16_t)(c->expect - 1);
            return 1;
        }
        return 0;
    }
    c->since_ack = 0;
    *ack = (uint16_t)(c->expect - 1);
    return 1;
}

/* loss and reorder in percent (each way; reorder swaps adjacent DATA); max_ratio
 * bounds the packets sent per block.  Restarting the window on every report of an
 * EDK2-like client went to 5-10x here; lock-step clients doubling everything
 * (sorcerer's apprentice) would be 2x even without loss. */
static void lossy_transfer(uint64_t size, uint32_t bs, uint32_t w, unsigned loss, unsigned reorder,
                           uint64_t seed, double max_ratio)
{
    struct tftp_send s = mk(size, bs, w, true);
    struct tftp_send_actions a;
    struct rng r = {seed};
    struct client c = {.expect = 1};
    enum { CAP = 4096 };
    uint64_t queue[2][CAP]; /* DATA blocks in flight, this round and the next */
    size_t qn = 0, rounds = 0;
    bool oack_in_flight;

    tftp_send_start(&s, &a);
    oack_in_flight = a.send_oack;
    while (s.outcome == TFTP_SEND_RUNNING && rounds++ < 200000) {
        uint16_t acks[CAP];
        size_t an = 0;
        if (oack_in_flight && !chance(&r, loss))
            acks[an++] = 0;
        oack_in_flight = false;
        for (size_t i = 0; i < qn; i++) { /* reorder: swap with the next one */
            if (i + 1 < qn && chance(&r, reorder)) {
                uint64_t t = queue[0][i];
                queue[0][i] = queue[0][i + 1];
                queue[0][i + 1] = t;
            }
        }
        for (size_t i = 0; i < qn; i++) {
            uint64_t k = queue[0][i];
            if (chance(&r, loss))
                continue;
            uint16_t ack;
            if (client_on_data(&c, tftp_send_block_wire(k), tftp_send_block_len(&s, k), bs, w, &ack)) {
                cr_assert_lt(an, CAP, "ACK storm");
                acks[an++] = ack;
            }
        }
        size_t nn = 0;
        bool acted = false;
        for (size_t i = 0; i < an && s.outcome == TFTP_SEND_RUNNING; i++) {
            if (chance(&r, loss))
                continue;
            tftp_send_on_ack(&s, acks[i], &a);
            if (a.send_oack)
                oack_in_flight = true;
            for (uint64_t k = a.first; k < a.first + a.count; k++) {
                cr_assert_lt(nn, CAP, "DATA storm");
                queue[1][nn++] = k;
            }
            acted |= a.timer == TFTP_SEND_TIMER_ARM;
        }
        if (!acted && s.outcome == TFTP_SEND_RUNNING) { /* nothing moved: the timer fires */
            tftp_send_on_timeout(&s, &a);
            oack_in_flight |= a.send_oack;
            for (uint64_t k = a.first; k < a.first + a.count; k++) {
                cr_assert_lt(nn, CAP, "DATA storm");
                queue[1][nn++] = k;
            }
        }
        memcpy(queue[0], queue[1], nn * sizeof queue[1][0]);
        qn = nn;
    }
    cr_assert_eq(s.outcome, TFTP_SEND_DONE, "seed %llu: %s after %zu rounds", (unsigned long long)seed,
                 tftp_send_outcome_str(s.outcome), rounds);
    cr_assert(c.done);
    cr_assert_eq(c.expect - 1, s.nblocks, "client got every block in order");
    cr_assert_lt((double)s.blocks_sent, (double)s.nblocks * max_ratio, "seed %llu: sent %llu for %llu blocks",
                 (unsigned long long)seed, (unsigned long long)s.blocks_sent, (unsigned long long)s.nblocks);
    if (!loss && !reorder) {
        cr_assert_eq(s.blocks_sent, s.nblocks);
        cr_assert_eq(s.timeouts, 0);
    }
}

Test(tftp_send, lossy_network_completes)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        lossy_transfer(200 * 1024, 1468, 16, 5, 5, seed, 3.5);
        lossy_transfer(100 * 1024 + 3, 512, 1, 10, 0, seed + 100, 1.5);
        lossy_transfer(64 * 1024, 1024, 4, 3, 10, seed + 200, 2.0);
    }
    lossy_transfer(1 << 20, 1468, 16, 0, 0, 7, 1.01);
    lossy_transfer(1 << 20, 1468, 16, 0, 3, 8, 1.5); /* reordering only */
}

Test(tftp_send, lossy_network_across_rollover)
{
    lossy_transfer(33ull << 20, 512, 16, 2, 2, 99, 2.0);
}

static struct tftp_send mk_adaptive(uint64_t size, uint32_t bs, uint32_t window, bool oack)
{
    struct tftp_send s;
    struct tftp_send_config c = {.size = size, .blksize = bs, .window = window, .oack = oack, .rto_min_ms = 10};
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_OK);
    return s;
}

/* RFC 6298: the first sample R sets SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR;
 * later ones smooth it; the result stays within [rto_min_ms, rto_ms]. */
Test(tftp_send, adaptive_rto_follows_rtt)
{
    struct tftp_send s = mk_adaptive(100 * 512, 512, 1, false);
    struct tftp_send_actions a;
    tftp_send_set_now(&s, 1000);
    tftp_send_start(&s, &a);
    cr_assert_eq(a.timer_ms, 200, "no sample yet: the configured timeout");
    tftp_send_set_now(&s, 1004);
    tftp_send_on_ack(&s, 1, &a);
    EXPECT_DATA(a, 2, 1);
    cr_assert_eq(a.timer_ms, 12, "R 4: 4 + 4 x 2");
    tftp_send_set_now(&s, 1008);
    tftp_send_on_ack(&s, 2, &a);
    /* err 0: RTTVAR 3/4 x 2 = 1.5, SRTT 4: RTO 4 + 6 = 10 */
    cr_assert_eq(a.timer_ms, 10);
    for (uint64_t t = 1009, b = 3; b < 40; b++, t += 1) {
        tftp_send_set_now(&s, t);
        tftp_send_on_ack(&s, (uint16_t)b, &a);
    }
    cr_assert_eq(a.timer_ms, 10, "never below the floor");
    tftp_send_set_now(&s, 1048 + 5000);
    tftp_send_on_ack(&s, 40, &a);
    cr_assert_eq(a.timer_ms, 200, "never above the configured timeout");
    cr_assert_eq(tftp_send_base_rto(&s), 200);
}

/* Karn's rule: the ACK of a block that was sent twice gives no sample. */
Test(tftp_send, adaptive_rto_karn)
{
    struct tftp_send s = mk_adaptive(100 * 512, 512, 1, false);
    struct tftp_send_actions a;
    tftp_send_set_now(&s, 0);
    tftp_send_start(&s, &a);
    tftp_send_set_now(&s, 200);
    tftp_send_on_timeout(&s, &a);
    EXPECT_DATA(a, 1, 1);
    cr_assert_eq(a.timer_ms, 400);
    tftp_send_set_now(&s, 590); /* 590 ms after the first copy, 390 after the second */
    tftp_send_on_ack(&s, 1, &a);
    cr_assert_not(s.have_rtt, "ambiguous: no sample");
    cr_assert_eq(a.timer_ms, 400, "the backed-off RTO is held until a fresh sample");
    tftp_send_set_now(&s, 592);
    tftp_send_on_ack(&s, 2, &a);
    cr_assert(s.have_rtt);
    cr_assert_eq(a.timer_ms, 10, "R 2: 2 + 4 x 1 = 6, raised to the floor");
}

/* A client slower to ACK than the RTO (a busy receiver): the first windows time
 * out, but the backed-off RTO is held through the late ACKs (RFC 6298 §5.7), so a
 * window goes out once, is timed, and the RTO learns; without the hold every
 * window timed out and was sent twice. */
Test(tftp_send, slow_acks_back_off_and_learn)
{
    struct tftp_send s = mk_adaptive(400 * 1468, 1468, 16, false);
    struct tftp_send_actions a;
    tftp_send_seed_rtt(&s, 1 * 8, 1 * 4); /* earlier transfers saw 1 ms */
    uint64_t t = 0;
    tftp_send_set_now(&s, t);
    tftp_send_start(&s, &a);
    cr_assert_eq(a.timer_ms, 10, "seeded: the floor");
    const uint64_t delay = 25; /* each window's ACK comes 25 ms after it was sent */
    uint64_t sent_at = t, resent = 0, timeouts = 0;
    while (s.outcome == TFTP_SEND_RUNNING && t < 100000) {
        uint64_t ack_at = sent_at + delay;
        if (t + a.timer_ms <= ack_at && a.timer != TFTP_SEND_TIMER_STOP) {
            t += a.timer_ms;
            tftp_send_set_now(&s, t);
            tftp_send_on_timeout(&s, &a);
            timeouts++;
            resent += a.count;
            continue; /* the copies are duplicates: the client's ACK is still coming */
        }
        t = ack_at;
        tftp_send_set_now(&s, t);
        uint64_t hi = s.sent_hi;
        tftp_send_on_ack(&s, (uint16_t)hi, &a);
        sent_at = t;
    }
    cr_assert_eq(s.outcome, TFTP_SEND_DONE);
    cr_assert_leq(timeouts, 3, "timeouts %llu: the RTO must learn the 25 ms", (unsigned long long)timeouts);
    cr_assert_leq(resent, 3 * 16);
    cr_assert_geq(tftp_send_base_rto(&s), delay, "RTO %u", tftp_send_base_rto(&s));
}

/* On a lossy, reordering path gap resends clear most samples: the held RTO is
 * let go after two progress events even without one, or it would climb to its
 * cap and stay there (atftp through a 5% loss + 5% reordering relay gave up). */
Test(tftp_send, held_rto_let_go_without_a_sample)
{
    struct tftp_send s = mk_adaptive(64 * 1468, 1468, 4, false);
    struct tftp_send_actions a;
    tftp_send_seed_rtt(&s, 1 * 8, 1 * 4);
    tftp_send_set_now(&s, 0);
    tftp_send_start(&s, &a);
    EXPECT_DATA(a, 1, 4);
    cr_assert_eq(a.timer_ms, 10);
    tftp_send_set_now(&s, 10);
    tftp_send_on_timeout(&s, &a); /* copies of 1-4 */
    EXPECT_DATA(a, 1, 4);
    cr_assert_eq(a.timer_ms, 20);
    tftp_send_set_now(&s, 12);
    tftp_send_on_ack(&s, 4, &a); /* progress 1: held */
    EXPECT_DATA(a, 5, 4);
    cr_assert_eq(a.timer_ms, 20);
    for (int i = 0; i < 4; i++) /* the copies' own ACKs use up the budget */
        tftp_send_on_ack(&s, 4, &a);
    tftp_send_set_now(&s, 13);
    tftp_send_on_ack(&s, 6, &a); /* progress 2, a gap: 7-8 again, 9-10 new, no sample */
    EXPECT_DATA(a, 7, 4);
    cr_assert_eq(a.timer_ms, 20, "still held");
    cr_assert_eq(s.rtt_block, 0, "copies in the window: no sample to come");
    tftp_send_set_now(&s, 15);
    tftp_send_on_ack(&s, 10, &a); /* progress 3 */
    cr_assert_not(s.have_rtt && s.srtt_x8 != 8, "no new sample was taken");
    cr_assert_eq(a.timer_ms, 10, "let go: the estimate again");
}

/* A window is timed by its newest block; the ACK of a window is the sample. */
Test(tftp_send, adaptive_rto_window_and_oack)
{
    struct tftp_send s = mk_adaptive(64 * 1468, 1468, 8, true);
    struct tftp_send_actions a;
    tftp_send_set_now(&s, 100);
    tftp_send_start(&s, &a);
    cr_assert(a.send_oack);
    cr_assert_eq(a.timer_ms, TFTP_SEND_OACK_RTO_MS, "the OACK waits long: atftp aborts on a second");
    tftp_send_set_now(&s, 105);
    tftp_send_on_ack(&s, 0, &a);
    EXPECT_DATA(a, 1, 8);
    cr_assert_not(s.have_rtt, "with a window the OACK's round trip is no sample");
    cr_assert_eq(a.timer_ms, 200);
    tftp_send_set_now(&s, 135);
    tftp_send_on_ack(&s, 8, &a);
    EXPECT_DATA(a, 9, 8);
    cr_assert_eq(s.srtt_x8, 30 * 8);
    cr_assert_eq(a.timer_ms, 90, "window round trip 30: 30 + 4 x 15");
    tftp_send_set_now(&s, 165);
    tftp_send_on_ack(&s, 16, &a);
    cr_assert_eq(a.timer_ms, 75, "R 30 again: RTTVAR 11.25, RTO 30 + 45");
    /* lock-step learns from the OACK */
    s = mk_adaptive(64 * 1468, 1468, 1, true);
    tftp_send_set_now(&s, 0);
    tftp_send_start(&s, &a);
    tftp_send_set_now(&s, 30);
    tftp_send_on_ack(&s, 0, &a);
    cr_assert_eq(a.timer_ms, 90, "OACK round trip 30: 30 + 4 x 15");
}

/* A repeated RRQ while the OACK waits: the OACK was lost, resend it now (but not
 * twice within an RTO, and never once ACK 0 came). */
Test(tftp_send, repeated_request_resends_oack)
{
    struct tftp_send s = mk_adaptive(5000, 1468, 4, true);
    struct tftp_send_actions a;
    tftp_send_set_now(&s, 0);
    tftp_send_start(&s, &a);
    tftp_send_set_now(&s, 50);
    tftp_send_on_request(&s, &a);
    cr_assert_not(a.send_oack, "too soon: the request crossed our OACK");
    tftp_send_set_now(&s, 250);
    tftp_send_on_request(&s, &a);
    cr_assert(a.send_oack);
    cr_assert_eq(a.timer, TFTP_SEND_TIMER_KEEP);
    tftp_send_set_now(&s, 260);
    tftp_send_on_request(&s, &a);
    cr_assert_not(a.send_oack, "once per RTO");
    tftp_send_set_now(&s, 262);
    tftp_send_on_ack(&s, 0, &a);
    EXPECT_DATA(a, 1, 4);
    cr_assert_not(s.have_rtt, "the OACK went twice: no sample");
    tftp_send_set_now(&s, 1000);
    tftp_send_on_request(&s, &a);
    cr_assert_not(a.send_oack);
    EXPECT_DATA(a, 0, 0);
    cr_assert_eq(a.note, TFTP_SEND_NOTE_IGNORED);
    /* the second ACK 0 our resent OACK may draw is explained, not a gap */
    tftp_send_on_ack(&s, 0, &a);
    EXPECT_DATA(a, 0, 0);
}

Test(tftp_send, adaptive_rto_config)
{
    struct tftp_send s;
    struct tftp_send_config c = {.size = 1, .blksize = 512, .window = 1, .rto_ms = 50, .rto_min_ms = 60};
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_EINVAL, "floor above the timeout");
    c.rto_min_ms = 50;
    cr_assert_eq(tftp_send_init(&s, &c), TFTP_OK);
}
