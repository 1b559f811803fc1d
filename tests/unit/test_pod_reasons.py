"""What the Kubernetes runtime reads from a pod that cannot become ready: the spawn fails at
once with the kubelet's reason, instead of waiting out the readiness timeout."""

from __future__ import annotations

from tasks.runtime.kubernetes.runtime import _hopeless, _last_error


def _pod(state: dict, last: dict | None = None) -> dict:
    return {"status": {"containerStatuses": [{"state": state, "lastState": last or {}}]}}


def test_a_missing_local_image_and_a_crash_loop_are_hopeless_with_the_kubelets_words():
    why = _hopeless(_pod({"waiting": {"reason": "ErrImageNeverPull",
                                      "message": 'Container image "localhost/x:1" is not present with pull policy of Never'}}))
    assert why == ('ErrImageNeverPull: Container image "localhost/x:1" is not present with pull policy of Never', False)
    assert _hopeless(_pod({"waiting": {"reason": "CrashLoopBackOff"}}, {"terminated": {"exitCode": 1, "reason": "Error"}})) \
        == ("the database container exited with code 1 (Error)", True)


def test_starting_and_pulling_are_not_hopeless():
    assert _hopeless(_pod({"waiting": {"reason": "ContainerCreating"}})) is None
    assert _hopeless(_pod({"running": {"startedAt": "2026-12-02T13:00:00Z"}})) is None
    assert _hopeless({"status": {}}) is None


def test_the_last_error_line_of_mariadbd_without_its_timestamp():
    log = ("2026-12-02 13:00:00 0 [Note] Starting MariaDB\n"
           "2026-12-02 13:00:00 0 [ERROR] mariadbd: Can't lock aria control file '/d/aria_log_control'\n"
           "2026-12-02 13:00:01 0 [ERROR] Aborting\n")
    assert _last_error(log) == "mariadbd: Can't lock aria control file '/d/aria_log_control'"
    assert _last_error("sh: 1: chown: Operation not permitted\n\n") == "sh: 1: chown: Operation not permitted"
    assert _last_error("") == ""
