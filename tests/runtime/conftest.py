"""The runtime contract suite runs on the Kubernetes runtime too: its fixtures come from tests/kube."""

from tests.kube.conftest import kube_cluster, node_settings  # noqa: F401
