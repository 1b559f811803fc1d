"""The runtime contract suite runs on the Kubernetes runtime too: its fixtures come from tests/kube."""

from tests.kube.conftest import k8s, kube_cluster, kube_settings, kubelet  # noqa: F401
