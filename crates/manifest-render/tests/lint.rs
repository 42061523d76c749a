//! Each lint rule on small fixtures: what it finds, and what it must not.

use std::path::Path;
use std::process::Command;

use manifest_render::lint::{Config, Finding, Ignore, KindPattern, Rule, Severity, lint_yaml};

fn run(yaml: &str, config: &Config) -> Vec<Finding> {
    lint_yaml(yaml, Path::new("fixture.yaml"), config).expect("fixture parses")
}

fn findings(yaml: &str) -> Vec<Finding> {
    run(yaml, &Config::default())
}

fn of(rule: Rule, fs: &[Finding]) -> Vec<Finding> {
    fs.iter().filter(|f| f.rule == rule).cloned().collect()
}

/// `field` of each finding of `rule`, in order.
fn fields(rule: Rule, fs: &[Finding]) -> Vec<String> {
    of(rule, fs)
        .iter()
        .map(|f| f.field.clone().unwrap_or_default())
        .collect()
}

const PROFILE_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: profiles.kubeflow.org}
spec:
  group: kubeflow.org
  names: {kind: Profile, plural: profiles}
  scope: Cluster
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
    subresources: {status: {}}
";

#[test]
fn unexpanded_var_in_names_references_labels_and_data() {
    let yaml = format!(
        "{PROFILE_CRD}---
apiVersion: kubeflow.org/v1beta1
kind: Profile
metadata: {{name: $(profile-name)}}
spec: {{owner: {{kind: User, name: $(user)}}}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  namespace: default
  labels: {{app: $(app-name), $(key): x}}
  annotations: {{cert-manager.io/inject-ca-from: $(kfp-namespace)/cert}}
data:
  root: minio://$(kfp-bucket)/x
  script: 'for i in $(seq 1 120); do echo ${{i}} {{{{inputs.parameters.x}}}}; done'
"
    );
    let fs = findings(&yaml);
    assert_eq!(
        fields(Rule::UnexpandedVar, &fs),
        [
            "metadata.name",
            "spec.owner.name",
            "metadata.labels.app",
            "metadata.labels[\"$(key)\"]",
            "metadata.annotations[\"cert-manager.io/inject-ca-from\"]",
            "data.root",
        ]
    );
    let profile = &of(Rule::UnexpandedVar, &fs)[0];
    assert_eq!(
        (profile.object.kind.as_str(), profile.object.name.as_str()),
        ("Profile", "$(profile-name)")
    );
    assert_eq!(profile.severity, Severity::Error);
    assert_eq!(profile.origin.as_deref(), Some("fixture.yaml"));
    assert!(profile.message.contains("$(profile-name)"), "{}", profile.message);
    assert!(profile.to_string().starts_with("error[unexpanded-var]: kubeflow.org/v1beta1 Profile $(profile-name) (from fixture.yaml): metadata.name:"), "{profile}");
}

#[test]
fn container_command_args_env_and_subpathexpr_are_not_findings() {
    // Kubernetes expands $(VAR) in these fields, in any pod template.
    let yaml = "apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: default}
spec:
  template:
    spec:
      initContainers:
      - name: i
        command: [sh, -c, 'echo $(POD_NAME)']
      containers:
      - name: c
        command: ['$(BIN)']
        args: ['--db_host=$(DBCONFIG_HOST_NAME)', '$$(ESCAPED)']
        env:
        - {name: A, value: '$(B)-x'}
        - name: C
          valueFrom: {configMapKeyRef: {name: '$(cm-name)', key: k}}
        volumeMounts:
        - {name: v, mountPath: /m, subPathExpr: '$(POD_NAME)'}
      volumes:
      - name: v
        configMap: {name: '$(volume-cm)'}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj, namespace: default}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: c, args: ['$(X)']}]
---
apiVersion: trainer.kubeflow.org/v1alpha1
kind: ClusterTrainingRuntime
metadata: {name: rt}
spec:
  template:
    spec:
      replicatedJobs:
      - name: node
        template:
          spec:
            template:
              spec:
                containers: [{name: node, command: [torchrun, '--nnodes=$(PET_NNODES)'], env: [{name: X, value: '$(Y)'}]}]
";
    let fs = findings(yaml);
    // Only the two references outside the expanded fields are reported.
    assert_eq!(
        fields(Rule::UnexpandedVar, &fs),
        [
            "spec.template.spec.containers[0].env[1].valueFrom.configMapKeyRef.name",
            "spec.template.spec.volumes[0].configMap.name",
        ]
    );
}

#[test]
fn crd_descriptions_are_not_findings_but_crd_metadata_is() {
    let yaml = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: jobsets.jobset.x-k8s.io
  annotations: {cert-manager.io/inject-ca-from: '$(CERTIFICATE_NAMESPACE)/$(CERTIFICATE_NAME)'}
spec:
  group: jobset.x-k8s.io
  names: {kind: JobSet, plural: jobsets}
  scope: Namespaced
  versions:
  - name: v1alpha2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: 'Variable references $(VAR_NAME) are expanded; $$(VAR_NAME) escapes. Hostname: `$(job-name)-$(index)`'
        properties:
          spec: {type: object, description: 'the Pod hostname takes the form `$(job-name)-$(index)`', default: {x: '$(y)'}}
    subresources: {status: {}}
";
    let fs = findings(yaml);
    assert_eq!(
        fields(Rule::UnexpandedVar, &fs),
        ["metadata.annotations[\"cert-manager.io/inject-ca-from\"]"]
    );
    assert!(fs.iter().all(|f| f.rule == Rule::UnexpandedVar), "{fs:#?}");
}

const STUB_VS_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: virtualservices.networking.istio.io}
spec:
  group: networking.istio.io
  names: {kind: VirtualService, plural: virtualservices}
  scope: Namespaced
  versions:
  - name: v1alpha3
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
";

const VS: &str = "apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: katib-ui, namespace: default}
spec: {hosts: ['*']}
";

#[test]
fn unknown_kind_without_crd_or_with_only_a_stub() {
    let none = findings(VS);
    let f = of(Rule::UnknownKind, &none);
    assert_eq!(f.len(), 1, "{none:#?}");
    assert!(
        f[0].message
            .contains("no CRD in the output defines networking.istio.io/VirtualService"),
        "{}",
        f[0].message
    );

    let stub = findings(&format!("{STUB_VS_CRD}---\n{VS}"));
    let f = of(Rule::UnknownKind, &stub);
    assert_eq!(f.len(), 1, "{stub:#?}");
    assert_eq!(f[0].object.name, "katib-ui");
    assert!(
        f[0].message
            .contains("stub CRD virtualservices.networking.istio.io"),
        "{}",
        f[0].message
    );

    // The same CRD with a status subresource is a real one (Katib's CRDs look like this).
    let real = STUB_VS_CRD.replace(
        "    storage: true\n",
        "    storage: true\n    subresources: {status: {}}\n",
    );
    assert!(of(Rule::UnknownKind, &findings(&format!("{real}---\n{VS}"))).is_empty());
    // So is one with properties.
    let real = STUB_VS_CRD.replace(
        "{type: object, x-kubernetes-preserve-unknown-fields: true}",
        "{type: object, properties: {spec: {type: object}}}",
    );
    assert!(of(Rule::UnknownKind, &findings(&format!("{real}---\n{VS}"))).is_empty());
    // A version the CRD does not serve.
    let v1 = VS.replace("v1alpha3", "v1");
    let fs = findings(&format!(
        "{}---\n{v1}",
        STUB_VS_CRD.replace(
            "x-kubernetes-preserve-unknown-fields: true",
            "properties: {spec: {type: object}}"
        )
    ));
    let f = of(Rule::UnknownKind, &fs);
    assert_eq!(f.len(), 1, "{fs:#?}");
    assert!(
        f[0].message
            .contains("does not serve version \"v1\" (it serves v1alpha3)"),
        "{}",
        f[0].message
    );
}

#[test]
fn built_in_and_cluster_provided_kinds_are_known() {
    let yaml = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: h, namespace: default}
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: gpu, namespace: default}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: p, namespace: default}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: c, namespace: default}
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: i}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
---
apiVersion: v1
kind: Widget
metadata: {name: w, namespace: default}
---
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {name: old, namespace: default}
";
    let fs = findings(yaml);
    let unknown: Vec<_> = of(Rule::UnknownKind, &fs)
        .into_iter()
        .map(|f| f.object.kind)
        .collect();
    assert_eq!(unknown, ["Widget", "PodDisruptionBudget"]);
    let old = of(Rule::UnknownKind, &fs).pop().unwrap();
    assert!(
        old.message
            .contains("policy/v1beta1 PodDisruptionBudget is no longer served: Kubernetes 1.25"),
        "{}",
        old.message
    );

    // Without the defaults, cert-manager's and Gateway API's kinds are unknown too;
    // listing Istio's group as provided clears the VirtualService.
    let config = Config {
        cluster_provided: vec![KindPattern::parse("networking.istio.io/*").unwrap()],
        ..Config::default()
    };
    let fs = run(&format!("{yaml}---\n{VS}"), &config);
    let unknown: Vec<_> = of(Rule::UnknownKind, &fs)
        .into_iter()
        .map(|f| f.object.kind)
        .collect();
    assert_eq!(
        unknown,
        [
            "Certificate",
            "ClusterIssuer",
            "HTTPRoute",
            "Widget",
            "PodDisruptionBudget"
        ]
    );
}

const DASHBOARD: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: centraldashboard, namespace: kubeflow}
spec:
  selector: {matchLabels: {app: centraldashboard}}
  template:
    metadata: {labels: {app: centraldashboard, tier: web}}
    spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Service
metadata: {name: centraldashboard, namespace: kubeflow}
spec:
  selector: {app: centraldashboard}
  ports: [{port: 80, targetPort: 8082}]
---
apiVersion: v1
kind: Namespace
metadata: {name: kubeflow}
";

/// The upstream policy the owner deleted: istio-system and same-namespace peers only.
const UPSTREAM_POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: centraldashboard, namespace: kubeflow}
spec:
  podSelector:
    matchExpressions: [{key: app, operator: In, values: [centraldashboard]}]
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [istio-system]}]
    - podSelector: {}
  policyTypes: [Ingress]
";

fn policy(name: &str, body: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: kubeflow}}\nspec:\n{body}"
    )
}

#[test]
fn network_policy_blocking_a_host_network_gateway() {
    let fs = findings(&format!("{DASHBOARD}---\n{UPSTREAM_POLICY}"));
    assert_eq!(fs.len(), 1, "{fs:#?}");
    let f = &fs[0];
    assert_eq!((f.rule, f.severity), (Rule::GatewayBlocked, Severity::Warning));
    assert_eq!(f.object.name, "centraldashboard");
    assert!(
        f.message.contains("Service kubeflow/centraldashboard"),
        "{}",
        f.message
    );

    // A deny-all policy blocks the gateway too; one on pods no Service fronts does not matter.
    let deny_all = policy("deny", "  podSelector: {}\n  policyTypes: [Ingress]\n");
    let fs = findings(&format!("{DASHBOARD}---\n{deny_all}"));
    assert_eq!(fields(Rule::GatewayBlocked, &fs), ["spec.ingress"]);
    let elsewhere = policy(
        "other",
        "  podSelector: {matchLabels: {app: mysql}}\n  ingress: [{from: [{podSelector: {}}]}]\n",
    );
    assert!(findings(&format!("{DASHBOARD}---\n{elsewhere}")).is_empty());
    // NotIn excludes the dashboard's pods.
    let not_in = policy(
        "not-in",
        "  podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [web]}]}\n  ingress: [{from: [{podSelector: {}}]}]\n",
    );
    assert!(findings(&format!("{DASHBOARD}---\n{not_in}")).is_empty());
}

#[test]
fn network_policies_that_admit_the_gateway_are_not_findings() {
    let admitting = [
        // An ipBlock may hold the node addresses.
        policy(
            "ip",
            "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]\n",
        ),
        // A rule without `from` admits any source (on its ports).
        policy(
            "ports",
            "  podSelector: {}\n  ingress: [{ports: [{port: 8082}]}]\n",
        ),
        policy("empty-from", "  podSelector: {}\n  ingress: [{from: []}]\n"),
        // Egress-only policies leave ingress alone.
        policy(
            "egress",
            "  podSelector: {}\n  policyTypes: [Egress]\n  egress: [{to: [{podSelector: {}}]}]\n",
        ),
    ];
    for p in &admitting {
        let fs = findings(&format!("{DASHBOARD}---\n{p}"));
        assert!(fs.is_empty(), "{p}\n{fs:#?}");
    }
    // Policies add up: the upstream policy plus an admitting one is fine.
    let fs = findings(&format!("{DASHBOARD}---\n{UPSTREAM_POLICY}---\n{}", admitting[1]));
    assert!(fs.is_empty(), "{fs:#?}");
    // A policy in another namespace selects nothing here.
    let other_ns = UPSTREAM_POLICY.replace("namespace: kubeflow", "namespace: default");
    assert!(
        of(
            Rule::GatewayBlocked,
            &findings(&format!("{DASHBOARD}---\n{other_ns}"))
        )
        .is_empty()
    );
}

#[test]
fn service_whose_pods_a_controller_makes() {
    // No workload in the output (a Notebook's pods): the selector stands for the pods' labels.
    let yaml = "apiVersion: v1
kind: Service
metadata: {name: nb, namespace: kubeflow}
spec: {selector: {notebook-name: nb}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: kubeflow}
---
";
    let p = policy(
        "nb",
        "  podSelector: {matchLabels: {notebook-name: nb}}\n  ingress: [{from: [{namespaceSelector: {}}]}]\n",
    );
    assert_eq!(
        fields(Rule::GatewayBlocked, &findings(&format!("{yaml}{p}"))),
        ["spec.ingress"]
    );
}

#[test]
fn duplicate_ids_ignore_version_and_default_namespace() {
    let yaml = "apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: default}
---
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: h, namespace: default}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: h, namespace: default}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r, namespace: a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r}
";
    let fs = of(Rule::DuplicateId, &findings(yaml));
    let dup: Vec<_> = fs
        .iter()
        .map(|f| (f.object.api_version.as_str(), f.object.kind.as_str()))
        .collect();
    assert_eq!(
        dup,
        [
            ("v1", "ConfigMap"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole")
        ]
    );
    assert!(
        fs[1]
            .message
            .contains("autoscaling/v1 HorizontalPodAutoscaler default/h (from fixture.yaml)"),
        "{}",
        fs[1].message
    );
}

#[test]
fn namespaces_nobody_creates() {
    let yaml = format!(
        "{PROFILE_CRD}---
apiVersion: v1
kind: Namespace
metadata: {{name: kubeflow}}
---
apiVersion: kubeflow.org/v1beta1
kind: Profile
metadata: {{name: kubeflow-user-example-com}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: a, namespace: kubeflow}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: b, namespace: kubeflow-user-example-com}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: c, namespace: kube-system}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: d}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: e, namespace: istio-system}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: f, namespace: ghost}}
---
apiVersion: kubeflow.org/v1beta1
kind: Profile
metadata: {{name: g, namespace: ghost}}
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {{name: h, namespace: ghost}}
"
    );
    let fs = findings(&yaml);
    let missing = of(Rule::MissingNamespace, &fs);
    assert_eq!(
        missing.iter().map(|f| f.object.name.as_str()).collect::<Vec<_>>(),
        ["e"],
        "{fs:#?}"
    );
    assert!(
        missing[0].message.contains("\"istio-system\""),
        "{}",
        missing[0].message
    );
    let config = Config {
        namespaces: vec!["istio-system".into()],
        ..Config::default()
    };
    assert!(of(Rule::MissingNamespace, &run(&yaml, &config)).is_empty());
}

#[test]
fn ignored_findings_are_dropped() {
    let yaml = format!("{DASHBOARD}---\n{UPSTREAM_POLICY}---\n{VS}");
    assert_eq!(findings(&yaml).len(), 2);
    let mut config = Config::default();
    config.ignore.push(Ignore {
        rule: Some(Rule::GatewayBlocked),
        name: Some("centraldashboard".into()),
        ..Ignore::default()
    });
    let fs = run(&yaml, &config);
    assert_eq!(fs.iter().map(|f| f.rule).collect::<Vec<_>>(), [Rule::UnknownKind]);
    // Every part must match.
    config.ignore = vec![Ignore {
        kind: Some("VirtualService".into()),
        namespace: Some("other".into()),
        ..Ignore::default()
    }];
    assert_eq!(run(&yaml, &config).len(), 2);
}

#[test]
fn disabled_rules_do_not_run() {
    let mut config = Config::default();
    config.disabled.insert(Rule::UnknownKind);
    config.disabled.insert(Rule::MissingNamespace);
    assert!(run(VS, &config).is_empty());
    assert_eq!(findings(VS).len(), 1);
}

// ---- the binary ----

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn cli(args: &[&str], dir: &Path, stdin: Option<&str>) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_manifest-render"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("KFLITE_UPSTREAM_MIRROR");
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run manifest-render");
    {
        use std::io::Write;
        let mut sin = child.stdin.take().expect("stdin");
        sin.write_all(stdin.unwrap_or("").as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    let o = Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    o
}

fn overlay(objects: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("kustomization.yaml"),
        "resources: [objects.yaml]\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("objects.yaml"), objects).unwrap();
    tmp
}

#[test]
fn lint_command_exit_codes() {
    // An error-severity finding fails `lint`; it names the object and the file it came from.
    let tmp = overlay(VS);
    let o = cli(&["lint", "."], tmp.path(), None);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains(
            "error[unknown-kind]: networking.istio.io/v1alpha3 VirtualService default/katib-ui (from "
        ),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("objects.yaml"), "{}", o.stderr);
    // Declared cluster-provided (flag or configuration file): clean.
    let o = cli(
        &[
            "lint",
            ".",
            "--cluster-provided",
            "networking.istio.io/VirtualService",
        ],
        tmp.path(),
        None,
    );
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""));
    std::fs::write(
        tmp.path().join("lint.yaml"),
        "clusterProvided: [networking.istio.io/*]\n",
    )
    .unwrap();
    let o = cli(&["lint", ".", "--config", "lint.yaml"], tmp.path(), None);
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""));
    // kflite-lint.yaml beside the kustomization is read by default; --config wins.
    std::fs::write(
        tmp.path().join("kflite-lint.yaml"),
        "clusterProvided: [networking.istio.io/*]\n",
    )
    .unwrap();
    let o = cli(&["lint", "."], tmp.path(), None);
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""));
    std::fs::write(tmp.path().join("empty.yaml"), "{}\n").unwrap();
    let o = cli(&["lint", ".", "--config", "empty.yaml"], tmp.path(), None);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    std::fs::remove_file(tmp.path().join("kflite-lint.yaml")).unwrap();
    // A bad configuration is an error naming the file.
    std::fs::write(tmp.path().join("bad.yaml"), "disable: [nope]\n").unwrap();
    let o = cli(&["lint", ".", "--config", "bad.yaml"], tmp.path(), None);
    assert_eq!(o.code, Some(1));
    assert!(
        o.stderr.contains("bad.yaml") && o.stderr.contains("unknown rule \"nope\""),
        "{}",
        o.stderr
    );

    // Warnings alone pass, unless --strict. Rendered YAML on stdin works too.
    let yaml = format!("{DASHBOARD}---\n{UPSTREAM_POLICY}");
    let o = cli(&["lint", "-"], tmp.path(), Some(&yaml));
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stderr.contains("warning[gateway-blocked]: networking.k8s.io/v1 NetworkPolicy kubeflow/centraldashboard (from <stdin>)"), "{}", o.stderr);
    let o = cli(&["lint", "-", "--strict"], tmp.path(), Some(&yaml));
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains("error[gateway-blocked]") && o.stderr.contains("lint: 1 finding(s) (--strict)"),
        "{}",
        o.stderr
    );
}

#[test]
fn build_prints_findings_as_warnings_and_strict_fails() {
    let tmp = overlay(VS);
    let o = cli(&["build", "."], tmp.path(), None);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("kind: VirtualService"), "{}", o.stdout);
    assert!(
        o.stderr
            .contains("warning[unknown-kind]: networking.istio.io/v1alpha3 VirtualService default/katib-ui"),
        "{}",
        o.stderr
    );

    let o = cli(&["build", ".", "--strict"], tmp.path(), None);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
    assert!(o.stderr.contains("error[unknown-kind]"), "{}", o.stderr);

    // -o writes nothing when --strict fails.
    let o = cli(&["build", ".", "--strict", "-o", "out.yaml"], tmp.path(), None);
    assert_eq!(o.code, Some(1));
    assert!(!tmp.path().join("out.yaml").exists());

    let o = cli(
        &[
            "build",
            ".",
            "--strict",
            "--cluster-provided",
            "networking.istio.io/*",
        ],
        tmp.path(),
        None,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stderr.is_empty() && o.stdout.contains("kind: VirtualService"),
        "{}",
        o.stderr
    );
}
