"""The Kubernetes overlays: `kubectl kustomize` renders each, every object passes the Kubernetes
schema (kubernetes-validate, strict: unknown fields fail too), and the properties the deployment
relies on hold in the rendered output — what `kubectl apply -k` would send."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with the dev extra (make install)")
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate comes with the dev extra (make install)"
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deployments" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
# The oldest release the manifests need (Job backoffLimitPerIndex is GA in 1.33) and the newest
# kubernetes-validate ships schemas for: both offline.
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
KUBECTL = shutil.which("kubectl")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|DATABASE_URL|REDIS_URL", re.IGNORECASE)

_rendered: dict[str, list[dict[str, Any]]] = {}


def render(overlay: str) -> list[dict[str, Any]]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: the kustomize overlays cannot be rendered here")
    if overlay not in _rendered:
        result = subprocess.run(
            [KUBECTL, "kustomize", str(K8S / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        _rendered[overlay] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return _rendered[overlay]


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in render(overlay) if o["kind"] == kind}


def pod_specs(overlay: str) -> dict[str, dict[str, Any]]:
    """Every pod template, by its owner's kind/name."""
    specs = {}
    for obj in render(overlay):
        spec = obj.get("spec", {})
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" in spec:
            specs[f"{obj['kind']}/{obj['metadata']['name']}"] = spec["template"]["spec"]
    return specs


def test_both_overlays_exist() -> None:
    assert set(OVERLAYS) >= {"cpu", "gpu"}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_passes_the_kubernetes_schema(overlay: str, version: str) -> None:
    failures = []
    for obj in render(overlay):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    assert not failures, "\n".join(failures)


def test_the_schema_check_does_catch_a_mistake() -> None:
    deployment = dict(objects("cpu", "Deployment")["verticals-api"])
    broken = {**deployment, "spec": {**deployment["spec"], "replicaz": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_literal_secrets(overlay: str) -> None:
    assert not objects(overlay, "Secret"), "Secrets are created by the operator, never committed"
    for owner, spec in pod_specs(overlay).items():
        for container in spec["containers"]:
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]):
                    assert "value" not in env, f"{owner}: {env['name']} must come from a Secret"
    for name, cm in objects(overlay, "ConfigMap").items():
        assert not any(SECRET_NAME.search(k) for k in cm.get("data", {})), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_non_root_with_a_read_only_root(overlay: str) -> None:
    for owner, spec in pod_specs(overlay).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, owner
        assert spec["securityContext"]["runAsUser"] >= 1000, owner
        assert spec.get("automountServiceAccountToken") is False, owner
        tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, owner
            assert context["allowPrivilegeEscalation"] is False, owner
            assert context["capabilities"]["drop"] == ["ALL"], owner
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp, f"{owner}: /tmp must be a writable emptyDir"
            assert re.search(r":[\w.-]+$", container["image"]), f"{owner}: image needs a tag"
            assert "memory" in container["resources"]["limits"], owner


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_probes_scaling_and_disruption_budget(overlay: str) -> None:
    api = objects(overlay, "Deployment")["verticals-api"]
    spec = api["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {c["topologyKey"] for c in spec["topologySpreadConstraints"]} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    labels = api["spec"]["template"]["metadata"]["labels"]
    for constraint in spec["topologySpreadConstraints"]:
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()

    hpa = objects(overlay, "HorizontalPodAutoscaler")["verticals-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "verticals-api"
    assert hpa["spec"]["minReplicas"] >= 2
    kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert kinds["Resource"]["resource"]["name"] == "cpu"
    assert kinds["Pods"]["pods"]["metric"]["name"] == "verticals_http_requests_per_second"
    assert "replicas" not in api["spec"], "the HPA owns the replica count"

    pdb = objects(overlay, "PodDisruptionBudget")["verticals-api"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = objects(overlay, "Service")["verticals-api"]
    assert service["spec"]["selector"].items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migration_job_goes_first_with_what_it_needs(overlay: str) -> None:
    job = objects(overlay, "Job")["verticals-migrate"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["verticals", "db", "upgrade"]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    # `kubectl apply -k ... -l verticals.io/stage=migrate` must carry everything the Job uses
    first = {
        (o["kind"], o["metadata"]["name"])
        for o in render(overlay)
        if o["metadata"].get("labels", {}).get("verticals.io/stage") == "migrate"
    }
    config = next(n for n in objects(overlay, "ConfigMap") if n.startswith("verticals-config"))
    assert first >= {
        ("Namespace", "verticals"),
        ("ConfigMap", config),
        ("Job", "verticals-migrate"),
        ("PersistentVolumeClaim", "verticals-home"),
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_retraining_and_sharded_scoring(overlay: str) -> None:
    assert "verticals-dashboard" in objects(overlay, "Deployment")
    assert "verticals-dashboard" in objects(overlay, "Service")
    cron = objects(overlay, "CronJob")["verticals-retrain-finance"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    train = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert train["args"][:3] == ["verticals", "retrain", "finance"]
    worker = objects(overlay, "CronJob")["verticals-retrain-worker"]["spec"]["jobTemplate"]
    (drain,) = worker["spec"]["template"]["spec"]["containers"]
    assert drain["args"][:4] == ["verticals", "retrain", "all", "--worker"]

    jobs = objects(overlay, "Job")
    score = jobs["verticals-score-finance"]["spec"]
    assert score["completionMode"] == "Indexed" and score["suspend"] is True
    (container,) = score["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["SHARDS"]) == score["completions"]
    args = " ".join(container["args"])
    assert "--shard $(JOB_COMPLETION_INDEX)/$(SHARDS)" in args
    assert "part-$(JOB_COMPLETION_INDEX)" in args
    (merge,) = jobs["verticals-score-finance-merge"]["spec"]["template"]["spec"]["containers"]
    parts = [a for a, b in zip(merge["args"], merge["args"][1:], strict=False) if a == "--merge"]
    assert len(parts) == score["completions"], "the merge reads every shard's part"
    merged = [b for a, b in zip(merge["args"], merge["args"][1:], strict=False) if a == "--merge"]
    assert merged == [f"$(OUTPUT_DIR)/part-{i}.parquet" for i in range(score["completions"])]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_multinode_training_is_an_indexed_job_behind_a_headless_service(overlay: str) -> None:
    job = objects(overlay, "Job")["verticals-train-medical"]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["suspend"] is True
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    nnodes = int(env["NNODES"]["value"])
    assert spec["completions"] == spec["parallelism"] == nnodes >= 2
    assert spec["maxFailedIndexes"] == 0, "one lost node must fail the run, not hang it"

    # pod 0 is reachable as <job>-0.<service>, at a port the Service and the container expose
    service = objects(overlay, "Service")[pod["subdomain"]]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    host, _, port = env["RDZV_ENDPOINT"]["value"].rpartition(":")
    assert host == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    (rdzv_port,) = service["spec"]["ports"]
    assert int(port) == rdzv_port["port"]
    assert {"name": rdzv_port["targetPort"], "containerPort": int(port)} in container["ports"]

    args = container["args"]
    assert args[:3] == ["verticals", "train", "medical"]
    flags = dict(zip(args[3::2], args[4::2], strict=False))
    assert flags["--node-rank"] == "$(JOB_COMPLETION_INDEX)"
    assert flags["--nnodes"] == "$(NNODES)" and flags["--rdzv-endpoint"] == "$(RDZV_ENDPOINT)"
    assert flags["--rdzv-id"] == "$(RDZV_ID)"
    assert "controller-uid" in env["RDZV_ID"]["valueFrom"]["fieldRef"]["fieldPath"]

    gpus = _gpus(container)
    assert gpus == (("1", "1") if overlay == "gpu" else (None, None))
    assert container["image"].startswith("verticals-gpu:" if overlay == "gpu" else "verticals:")


def _gpus(container: dict[str, Any]) -> tuple[str | None, str | None]:
    resources = container.get("resources", {})
    return (
        resources.get("requests", {}).get("nvidia.com/gpu"),
        resources.get("limits", {}).get("nvidia.com/gpu"),
    )


def test_gpu_overlay_puts_the_api_on_gpu_nodes() -> None:
    spec = objects("gpu", "Deployment")["verticals-api"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert _gpus(container) == ("1", "1")
    assert container["image"].startswith("verticals-gpu:")
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # the patch kept it
    medical = objects("gpu", "CronJob")["verticals-retrain-medical"]
    (train,) = medical["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert _gpus(train) == ("1", "1")


def test_cpu_overlay_asks_for_no_gpu() -> None:
    for owner, spec in pod_specs("cpu").items():
        assert "tolerations" not in spec, owner
        for container in spec["containers"]:
            assert _gpus(container) == (None, None), owner
            assert not container["image"].startswith("verticals-gpu"), owner


STANDALONE = sorted((K8S / "jobs").glob("*.yaml"))


@pytest.mark.parametrize("manifest", STANDALONE, ids=lambda p: p.name)
def test_standalone_jobs_pass_the_schema_and_run_non_root(manifest: Path) -> None:
    for obj in yaml.safe_load_all(manifest.read_text()):
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
        spec = obj["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert not any("value" in e for e in container["env"] if SECRET_NAME.search(e["name"]))
