"""How Ray's job API errors are read: only the HTTP status phrase decides an auth refusal."""

from pipelines.jobs.client import http_status


def test_the_status_comes_from_ray_s_phrase_only() -> None:
    assert http_status("Request failed with status code 401: Authentication required.") == 401
    assert http_status("Request failed with status code 403: Authentication failed.") == 403
    # A 404 whose job id happens to hold "401" is not a refusal (a flaky test found it).
    assert http_status("Request failed with status code 404: Job dup-17651401403 not found") == 404
    assert http_status("Job dup-1765140140 does not exist; port 34013") is None
