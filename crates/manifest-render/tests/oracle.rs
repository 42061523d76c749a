//! Synthetic kustomizations covering features and YAML styles beyond the
//! upstream corpus, rendered by the reference (`kubectl kustomize`, i.e.
//! kustomize v5.8.1) and by manifest-render: outputs must be identical, and
//! where the reference refuses a case we must refuse it too.

use std::path::Path;
use std::process::Command;

struct Case {
    name: &'static str,
    /// Files of the case; the kustomization to build is in `build/`.
    files: &'static [(&'static str, &'static str)],
}

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      serviceAccountName: runner
      containers:
      - name: app
        image: docker.io/library/nginx:1.25
        args: [\"--mode=$(MODE)\", \"$(PORT)\"]
        env:
        - name: A
          value: a
        - name: CFG
          valueFrom:
            configMapKeyRef: {name: settings, key: x}
        volumeMounts:
        - {name: conf, mountPath: /etc/conf}
      - name: sidecar
        image: busybox
        command: [sh, -c, 'echo hi']
      volumes:
      - name: conf
        configMap: {name: settings}
      - name: sec
        secret: {secretName: creds}
";

const CASES: &[Case] = &[
    Case {
        name: "generators_nameref_prefix",
        files: &[
            ("base/kustomization.yaml", "resources: [deploy.yaml, rbac.yaml]
configMapGenerator:
- name: settings
  literals: [x=1, y=\"two words\", 'z=''quoted''']
  files: [app.properties, renamed.txt=data.txt]
  envs: [params.env]
secretGenerator:
- name: creds
  literals: [password=s3cr3t]
  type: kubernetes.io/basic-auth
"),
            ("base/deploy.yaml", DEPLOY),
            ("base/rbac.yaml", "apiVersion: v1
kind: ServiceAccount
metadata: {name: runner}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: runner-binding}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: runner-role}
subjects:
- {kind: ServiceAccount, name: runner}
- {kind: ServiceAccount, name: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: runner-role}
rules: []
"),
            ("base/app.properties", "a=1\nb=2\n"),
            ("base/data.txt", "line one\nline two  \n"),
            ("base/params.env", "# comment\nFOO=bar\nEMPTY=\nQUOTED=\"keep\"\n"),
            ("build/kustomization.yaml", "resources: [../base]
namePrefix: pre-
nameSuffix: -suf
namespace: team
generatorOptions:
  labels: {gen: 'yes'}
  annotations: {note: generated}
configMapGenerator:
- name: settings
  behavior: merge
  literals: [x=override, extra=1]
- name: plain
  literals: [k=v]
  options: {disableNameSuffixHash: true, immutable: true}
secretGenerator:
- name: big
  literals: [blob=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]
"),
        ],
    },
    Case {
        name: "labels_annotations_images_replicas",
        files: &[
            ("build/deploy.yaml", DEPLOY),
            ("build/svc.yaml", "apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"),
            ("build/kustomization.yaml", "resources: [deploy.yaml, svc.yaml]
commonLabels: {team: blue}
commonAnnotations: {owner: 'me', version: '1.0'}
labels:
- pairs: {tier: front}
  includeSelectors: false
  includeTemplates: true
- pairs: {env: prod}
  includeSelectors: true
images:
- name: docker.io/library/nginx
  newName: registry.local/nginx
  newTag: '1.27'
- name: busybox
  digest: sha256:0123456789abcdef
replicas:
- name: web
  count: 3
"),
        ],
    },
    Case {
        name: "patches_all_kinds",
        files: &[
            ("build/deploy.yaml", DEPLOY),
            ("build/kustomization.yaml", "resources: [deploy.yaml]
patches:
- patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      template:
        spec:
          containers:
          - name: sidecar
            image: busybox:2
          - name: new
            image: alpine
          - name: app
            env:
            - name: B
              value: b
            - name: A
              $patch: delete
          volumes:
          - name: sec
            $patch: delete
- target: {kind: Deployment, name: 'w.*'}
  patch: |-
    - op: add
      path: /metadata/annotations
      value: {patched: 'true'}
    - op: replace
      path: /spec/replicas
      value: 5
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --extra
    - op: copy
      from: /metadata/name
      path: /metadata/labels/copied
    - op: remove
      path: /spec/template/spec/containers/1/command
- path: smp.yaml
patchesJson6902:
- target: {group: apps, version: v1, kind: Deployment, name: web}
  path: ops.yaml
"),
            ("build/smp.yaml", "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  strategy: {type: Recreate}
  template:
    metadata:
      annotations: {a: b}
      labels:
        app: null
"),
            ("build/ops.yaml", "- {op: move, from: /spec/template/metadata/annotations/a, path: /metadata/labels/moved}\n"),
        ],
    },
    Case {
        name: "replacements_and_vars",
        files: &[
            ("build/deploy.yaml", DEPLOY),
            ("build/cm.yaml", "apiVersion: v1
kind: ConfigMap
metadata: {name: source}
data:
  mode: fast
  port: '8080'
  image: registry.io/team/app:v9
"),
            ("build/kustomization.yaml", "resources: [deploy.yaml, cm.yaml]
vars:
- name: MODE
  objref: {kind: ConfigMap, name: source, apiVersion: v1}
  fieldref: {fieldpath: data.mode}
- name: PORT
  objref: {kind: ConfigMap, name: source, apiVersion: v1}
  fieldref: {fieldPath: data.port}
- name: UNUSED
  objref: {kind: ConfigMap, name: source, apiVersion: v1}
replacements:
- source: {kind: ConfigMap, name: source, fieldPath: data.image, options: {delimiter: ':', index: 1}}
  targets:
  - select: {kind: Deployment}
    fieldPaths: [spec.template.spec.containers.[name=app].image]
    options: {delimiter: ':', index: 1}
- source: {kind: ConfigMap, name: source, fieldPath: data.mode}
  targets:
  - select: {kind: Deployment}
    fieldPaths: [metadata.annotations.mode, spec.template.spec.containers.1.env.0.value]
    options: {create: true}
"),
        ],
    },
    Case {
        name: "namespace_sort_and_styles",
        files: &[
            ("build/objs.yaml", "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: styles}
  data:
    yes: 'yes'
    on: on
    num: '1'
    float: '1.5'
    date: '2024-01-02'
    sexagesimal: '1:20'
    empty: ''
    space: ' lead'
    trail: 'trail '
    colon: 'a: b'
    hash: 'a #b'
    dash: '- x'
    multi: \"line1\\nline2\\n\"
    multitrail: \"line1  \\nline2\"
    tab: \"a\\tb\"
    unicode: \"héllo ✓ \\u00a0\"
    long: this is a fairly long plain string that certainly goes past the eighty column limit of go-yaml v2 emitter width
    longq: 'this is a fairly long single quoted string: with a colon space, so it has to be quoted and folded by the emitter'
    null1: null
    tilde: ~
    bool: 'true'
    octal: '0755'
    hex: '0x1F'
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crb}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: ServiceAccount, name: default, namespace: other}
- {kind: ServiceAccount, name: someone, namespace: other}
---
apiVersion: v1
kind: Namespace
metadata: {name: old}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: hook}
webhooks:
- name: v.example.com
  clientConfig:
    service: {name: svc, namespace: old, path: /v}
  admissionReviewVersions: [v1]
  sideEffects: None
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec:
  numbers: [1, 2.5, -3, 1e3, 0.000001, 100000000000000000000]
  nested: {b: 1, a: {}, c: [], B: 2, a10: 1, a9: 1}
"),
            ("build/kustomization.yaml", "resources: [objs.yaml]
namespace: fresh
"),
        ],
    },
    Case {
        name: "components_and_fifo",
        files: &[
            ("comp/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
- patch: |-
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: c}
    data: {fromComponent: 'true'}
configMapGenerator:
- name: extra
  literals: [a=b]
"),
            ("build/cm.yaml", "apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data: {k: v}
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {ports: [{port: 1}]}
"),
            ("build/kustomization.yaml", "resources: [cm.yaml]
components: [../comp]
sortOptions: {order: fifo}
"),
        ],
    },
    Case {
        name: "refused_missing_patch_target",
        files: &[
            ("build/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"),
            ("build/kustomization.yaml", "resources: [cm.yaml]
patches:
- patch: |-
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: nope}
"),
        ],
    },
    Case {
        name: "refused_json_patch_without_target",
        files: &[
            ("build/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"),
            ("build/kustomization.yaml", "resources: [cm.yaml]
patches:
- patch: '[{\"op\": \"add\", \"path\": \"/data\", \"value\": {}}]'
"),
        ],
    },
];

fn write_case(dir: &Path, case: &Case) {
    for (path, text) in case.files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
    }
}

#[test]
fn synthetic_cases_match_kubectl_kustomize() {
    let test = "synthetic_cases_match_kubectl_kustomize";
    let Some(kubectl) = testkit::require_tool(test, "kubectl") else {
        return;
    };
    let mut failures = Vec::new();
    for case in CASES {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_case(tmp.path(), case);
        let build = tmp.path().join("build");
        let want = Command::new(&kubectl)
            .arg("kustomize")
            .arg(&build)
            .output()
            .expect("run kubectl");
        let got = manifest_render::render(&build, &manifest_render::Options::default());
        match (want.status.success(), got) {
            (true, Ok(r)) => {
                let want = String::from_utf8_lossy(&want.stdout).to_string();
                if r.yaml != want {
                    let line = r
                        .yaml
                        .lines()
                        .zip(want.lines())
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    failures.push(format!(
                        "{}: line {}: expected {:?}, got {:?}",
                        case.name,
                        line + 1,
                        want.lines().nth(line).unwrap_or("<end>"),
                        r.yaml.lines().nth(line).unwrap_or("<end>")
                    ));
                }
            }
            (true, Err(e)) => {
                failures.push(format!("{}: we failed where kustomize succeeded: {e}", case.name))
            }
            (false, Ok(_)) => failures.push(format!(
                "{}: kustomize refused ({}) but we rendered",
                case.name,
                String::from_utf8_lossy(&want.stderr).trim()
            )),
            (false, Err(e)) => {
                // Both refuse; ours must name the kustomization file.
                if !e.to_string().contains("kustomization.yaml") {
                    failures.push(format!("{}: error does not name the file: {e}", case.name));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
