"""pysyncobj's alarm about re-sent, already-applied entries is logged at the level it deserves."""
import logging

import etcdnode.raft  # noqa: F401  (installs the filter)


def test_resent_applied_entries_are_info_with_the_reason(caplog):
    with caplog.at_level(logging.DEBUG, logger="pysyncobj.syncobj"):
        logging.getLogger("pysyncobj.syncobj").critical(
            "truncating already-applied log entries from index %d (last applied: %d) - state machine may have "
            "diverged from other cluster members", 41, 57)
        logging.getLogger("pysyncobj.syncobj").critical("something else")
    first, other = caplog.records
    assert first.levelno == logging.INFO and "diverged" not in first.getMessage()
    assert first.getMessage().startswith("leader re-sent log entries from index 41 (applied here up to 57)")
    assert other.levelno == logging.CRITICAL
