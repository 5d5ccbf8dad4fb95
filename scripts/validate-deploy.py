#!/usr/bin/env python3
"""Validates the deployment files so that a broken one fails the test command.

- k8s/overlays/*: rendered with the subset of kustomize these manifests use (resources,
  namespace, labels, replicas, images, strategic-merge patches), then every object is checked
  against the Kubernetes OpenAPI schema of KUBE_VERSION with kubernetes-validate. Custom
  resources (CloudNativePG's Cluster) are listed as not schema-checked. When `kubectl` is
  installed, its own `kubectl kustomize` rendering must equal ours, so the renderer cannot drift.
- deploy/compose.yaml: every service has an image or build, every depends_on names a service,
  every bind-mounted file exists, and the banter services get the settings a cluster needs.
- deploy/Dockerfile: multi-stage, runs as a non-root user, ships only the banter binary.

Usage: scripts/validate-deploy.py  (needs PyYAML and kubernetes-validate; scripts/test
installs them into a virtualenv).
"""

import copy
import pathlib
import shutil
import subprocess
import sys

import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
KUBE_VERSION = "1.31.0"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
failures = []


def fail(message):
    failures.append(message)


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def merge(base, patch):
    """Strategic merge as kustomize does it for these manifests: maps merge, lists of named
    maps merge by name, anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            for i, existing in enumerate(out):
                if existing["name"] == item["name"]:
                    out[i] = merge(existing, item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def containers(obj):
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else spec
    return pod.get("containers", []) + pod.get("initContainers", [])


def render(directory):
    directory = pathlib.Path(directory)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_dir():
            objects += render(path)
        elif path.is_file():
            objects += load_docs(path)
        else:
            fail(f"{directory}/kustomization.yaml: resource {resource} does not exist")
    for patch in kustomization.get("patches", []):
        for doc in load_docs(directory / patch["path"]):
            matches = [
                o
                for o in objects
                if o["kind"] == doc["kind"] and o["metadata"]["name"] == doc["metadata"]["name"]
            ]
            if not matches:
                fail(f"{directory}: patch {patch['path']} matches no object")
            for o in matches:
                objects[objects.index(o)] = merge(o, doc)
    for entry in kustomization.get("replicas", []):
        found = [o for o in objects if o["metadata"]["name"] == entry["name"] and "replicas" in o.get("spec", {})]
        if not found:
            fail(f"{directory}: replicas entry {entry['name']} matches no workload")
        for o in found:
            o["spec"]["replicas"] = entry["count"]
    for image in kustomization.get("images", []):
        for o in objects:
            for c in containers(o):
                name = c["image"].split("@")[0].rsplit(":", 1)[0] if ":" in c["image"].split("/")[-1] else c["image"]
                if name == image["name"]:
                    new = image.get("newName", name)
                    c["image"] = f"{new}:{image['newTag']}" if "newTag" in image else new
    for label in kustomization.get("labels", []):
        for o in objects:
            o["metadata"].setdefault("labels", {}).update(label["pairs"])
    if "namespace" in kustomization:
        for o in objects:
            if o["kind"] not in CLUSTER_SCOPED:
                o["metadata"]["namespace"] = kustomization["namespace"]
    return objects


def key(o):
    return (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])


def check_overlay(overlay):
    objects = render(overlay)
    names = [key(o) for o in objects]
    if len(names) != len(set(names)):
        fail(f"{overlay}: duplicate objects {sorted(n for n in names if names.count(n) > 1)}")
    unchecked = []
    for o in objects:
        if o["apiVersion"].endswith(".cnpg.io/v1") or o["apiVersion"].startswith("monitoring.coreos.com/"):
            unchecked.append(f"{o['kind']}/{o['metadata']['name']}")
            continue
        try:
            kubernetes_validate.validate(o, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{overlay}: {o['kind']}/{o['metadata']['name']}: {e.message} at {'.'.join(map(str, e.path))}")
        except Exception as e:  # an unknown kind or version is a failure too
            fail(f"{overlay}: {o['kind']}/{o['metadata']['name']}: {e}")
        for c in containers(o):
            if c["image"] == "banter" or c["image"].endswith(":latest"):
                fail(f"{overlay}: {o['kind']}/{o['metadata']['name']} has an unpinned image {c['image']}")
    check_consistency(overlay, objects)
    if shutil.which("kubectl"):
        out = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True)
        if out.returncode != 0:
            fail(f"{overlay}: kubectl kustomize failed: {out.stderr.strip()}")
        else:
            theirs = {key(o): o for o in yaml.safe_load_all(out.stdout) if o}
            ours = {key(o): o for o in objects}
            if theirs != ours:
                diff = sorted(set(theirs) ^ set(ours)) or [k for k in ours if ours[k] != theirs.get(k)]
                fail(f"{overlay}: our rendering differs from kubectl kustomize at {diff}")
    print(f"{overlay.relative_to(ROOT)}: {len(objects)} objects valid for Kubernetes {KUBE_VERSION}"
          + (f" (custom resources not schema-checked: {', '.join(unchecked)})" if unchecked else "")
          + (" and equal to kubectl kustomize" if shutil.which("kubectl") else ""))


def check_consistency(overlay, objects):
    """Cross-object rules the schemas cannot see."""
    by_kind = {}
    for o in objects:
        by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    config = by_kind.get("ConfigMap", {}).get("banter-config", {}).get("data", {})
    drain = int(config.get("BANTER_DRAIN_WINDOW_SECS", "10"))
    shutdown = int(config.get("BANTER_SHUTDOWN_TIMEOUT_SECS", "30"))
    for name, d in by_kind.get("Deployment", {}).items():
        if not name.startswith("banter-"):
            continue
        pod = d["spec"]["template"]["spec"]
        pre_stop = pod["containers"][0].get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace <= pre_stop + drain + shutdown:
            fail(f"{overlay}: {name}: terminationGracePeriodSeconds {grace} does not cover preStop {pre_stop} + drain {drain} + shutdown {shutdown}")
        selector = d["spec"]["selector"]["matchLabels"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in selector.items()):
            fail(f"{overlay}: {name}: selector does not match its pod labels")
    for kind in ("Service", "PodDisruptionBudget"):
        for name, o in by_kind.get(kind, {}).items():
            sel = o["spec"]["selector"].get("matchLabels", o["spec"]["selector"])
            if not any(
                all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
                for d in by_kind.get("Deployment", {}).values()
            ):
                fail(f"{overlay}: {kind}/{name} selects no pods")
    for name, rule in by_kind.get("PrometheusRule", {}).items():
        plain = yaml.safe_load((ROOT / "deploy" / "prometheus" / "banter-rules.yml").read_text())
        if rule.get("spec") != plain:
            fail(f"{overlay}: PrometheusRule/{name} differs from deploy/prometheus/banter-rules.yml")
    for name, h in by_kind.get("HorizontalPodAutoscaler", {}).items():
        target = h["spec"]["scaleTargetRef"]["name"]
        if target not in by_kind.get("Deployment", {}):
            fail(f"{overlay}: HPA {name} targets a missing Deployment {target}")
    for name, ing in by_kind.get("Ingress", {}).items():
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                svc = path["backend"]["service"]["name"]
                if svc not in by_kind.get("Service", {}):
                    fail(f"{overlay}: Ingress {name} routes to a missing Service {svc}")


def check_compose():
    path = ROOT / "deploy" / "compose.yaml"
    compose = yaml.safe_load(path.read_text())
    services = compose.get("services", {})
    for name, s in services.items():
        if "image" not in s and "build" not in s:
            fail(f"compose: service {name} has neither image nor build")
        for dep in s.get("depends_on", {}):
            if dep not in services:
                fail(f"compose: {name} depends on unknown service {dep}")
        for volume in s.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                if not (path.parent / source).exists():
                    fail(f"compose: {name} mounts missing file {source}")
            elif source not in compose.get("volumes", {}):
                fail(f"compose: {name} uses undeclared volume {source}")
        if s.get("image") == "banter:dev" and name != "migrate":
            env = s.get("environment", {})
            for needed in ("BANTER_ROLE", "BANTER_DATABASE_URL", "BANTER_REDIS_URL", "BANTER_JWT_SECRET"):
                if needed not in env:
                    fail(f"compose: {name} lacks {needed}")
    roles = sorted(s["environment"]["BANTER_ROLE"] for s in services.values() if "BANTER_ROLE" in s.get("environment", {}))
    if roles.count("realtime") < 2 or "api" not in roles:
        fail(f"compose: expected an api node and two realtime nodes, got {roles}")
    print(f"deploy/compose.yaml: {len(services)} services consistent")


def check_dockerfile():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    stages = [l for l in text.splitlines() if l.startswith("FROM ")]
    if len(stages) < 2:
        fail("Dockerfile: not multi-stage")
    if "USER 10001" not in text:
        fail("Dockerfile: does not switch to a non-root user")
    if "-p banter-server" not in text or "COPY --from=build /out/banter " not in text:
        fail("Dockerfile: does not build and ship exactly the banter binary")
    ignored = (ROOT / ".dockerignore").read_text().split() if (ROOT / ".dockerignore").exists() else []
    for heavy in ("target/", "tests/js/node_modules/"):
        if heavy not in ignored:
            fail(f".dockerignore: {heavy} would be sent to the Docker build context")
    print(f"deploy/Dockerfile: {len(stages)} stages, non-root, banter binary only")


for overlay in sorted((ROOT / "k8s" / "overlays").iterdir()):
    check_overlay(overlay)
check_compose()
check_dockerfile()
if failures:
    print("\n".join(["deployment files are broken:"] + failures), file=sys.stderr)
    sys.exit(1)
