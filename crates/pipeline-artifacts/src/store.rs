//! SeaweedFS's IAM and S3 APIs, as the controller and the hook use them.
//!
//! SeaweedFS answers the AWS IAM query API on its own port (8111) and S3 on
//! 8333. Where it differs from AWS (see docs/pipeline-artifacts.md):
//! `CreateAccessKey` creates a missing user; `ListAccessKeys` for a missing
//! user is an empty list; `DeleteAccessKey` and `DeleteUserPolicy` succeed
//! for things that are not there; `PutUserPolicy` needs the user to exist.
//! Every call here is written to be correct on both.

use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
};
use aws_smithy_http_client::tls;

use crate::desired::{LIFECYCLE_PREFIX, LIFECYCLE_RULE_ID, policy_document, policy_name};
use crate::secret::Credentials;

/// Where SeaweedFS listens, and the admin identity the controller acts as.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// IAM API, e.g. `http://seaweedfs.kubeflow:8111`.
    pub iam: String,
    /// S3 API, e.g. `http://seaweedfs.kubeflow:8333`.
    pub s3: String,
    /// Signing region; SeaweedFS ignores it.
    pub region: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SeaweedFS {api} {op} for {subject} failed: {message}")]
    Call {
        api: &'static str,
        op: &'static str,
        subject: String,
        message: String,
        code: Option<String>,
    },
    #[error("SeaweedFS {op} for {subject} answered without {what}")]
    Malformed {
        op: &'static str,
        subject: String,
        what: &'static str,
    },
    #[error("IAM user {0} holds the admin's access key; refusing to manage it as a namespace")]
    AdminUser(String),
    #[error("lifecycle rule for bucket {bucket} is invalid: {message}")]
    Lifecycle { bucket: String, message: String },
}

impl StoreError {
    /// The AWS error code (e.g. `NoSuchEntity`), when SeaweedFS sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            StoreError::Call { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// Decodes `%XX` escapes (AWS URL-encodes policy documents in responses).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn call_err<E>(api: &'static str, op: &'static str, subject: &str, err: E) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    StoreError::Call {
        api,
        op,
        subject: subject.to_owned(),
        code: err.code().map(str::to_owned),
        message: DisplayErrorContext(&err).to_string(),
    }
}

/// Clients for one SeaweedFS, acting as the admin identity.
#[derive(Clone, Debug)]
pub struct SeaweedStore {
    endpoints: Endpoints,
    /// The admin's access key id: a namespace Secret holding it is never replaced.
    pub admin_key_id: Option<String>,
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
}

/// The HTTP client both SDKs use: hyper with rustls on ring (no aws-lc).
pub fn http_client() -> aws_sdk_iam::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}

/// An IAM config builder for `endpoints` signed with `creds`; tests add interceptors to it.
pub fn iam_config(endpoints: &Endpoints, creds: &Credentials) -> aws_sdk_iam::config::Builder {
    aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new(endpoints.region.clone()))
        .endpoint_url(&endpoints.iam)
        .credentials_provider(sdk_credentials(creds))
        .http_client(http_client())
}

/// An S3 config builder (path-style) for `endpoints` signed with `creds`.
pub fn s3_config(endpoints: &Endpoints, creds: &Credentials) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(endpoints.region.clone()))
        .endpoint_url(&endpoints.s3)
        .force_path_style(true)
        .credentials_provider(sdk_credentials(creds))
        .http_client(http_client())
}

/// Both SDKs re-export the same credentials type.
fn sdk_credentials(creds: &Credentials) -> aws_sdk_iam::config::Credentials {
    aws_sdk_iam::config::Credentials::new(
        &creds.access_key_id,
        creds.secret_access_key.expose(),
        None,
        None,
        "pipeline-artifacts",
    )
}

/// An S3 client for `endpoints` as `creds` (e.g. a namespace's own key).
pub fn s3_client(endpoints: &Endpoints, creds: &Credentials) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(s3_config(endpoints, creds).build())
}

impl SeaweedStore {
    pub fn new(endpoints: &Endpoints, admin: &Credentials, bucket: impl Into<String>) -> Self {
        let mut store = Self::from_configs(
            endpoints,
            iam_config(endpoints, admin),
            s3_config(endpoints, admin),
            bucket,
        );
        store.admin_key_id = Some(admin.access_key_id.clone());
        store
    }

    /// Where this store's SeaweedFS listens.
    pub fn endpoints(&self) -> Endpoints {
        self.endpoints.clone()
    }

    /// From SDK config builders, e.g. with fault-injecting interceptors added.
    pub fn from_configs(
        endpoints: &Endpoints,
        iam: aws_sdk_iam::config::Builder,
        s3: aws_sdk_s3::config::Builder,
        bucket: impl Into<String>,
    ) -> Self {
        Self {
            endpoints: endpoints.clone(),
            admin_key_id: None,
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            bucket: bucket.into(),
        }
    }

    /// Access key ids of `user` (none when the user does not exist).
    pub async fn list_keys(&self, user: &str) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .iam
                .list_access_keys()
                .user_name(user)
                .set_marker(marker.clone())
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                // AWS says NoSuchEntity for a missing user; SeaweedFS returns an empty list.
                Err(e) if e.code() == Some("NoSuchEntity") => return Ok(ids),
                Err(e) => return Err(call_err("IAM", "ListAccessKeys", user, e)),
            };
            ids.extend(
                out.access_key_metadata()
                    .iter()
                    .filter_map(|k| k.access_key_id().map(str::to_owned)),
            );
            match (out.is_truncated(), out.marker()) {
                (true, Some(next)) if Some(next) != marker.as_deref() => marker = Some(next.to_owned()),
                _ => break,
            }
        }
        // A namespace named like the admin user (upstream: kubeflow-admin) must
        // never get, rotate or delete the admin's keys. Every path lists first.
        if self
            .admin_key_id
            .as_ref()
            .is_some_and(|admin| ids.contains(admin))
        {
            return Err(StoreError::AdminUser(user.to_owned()));
        }
        Ok(ids)
    }

    /// Makes sure `user` exists (SeaweedFS would create it on `CreateAccessKey`; AWS would not).
    pub async fn ensure_user(&self, user: &str) -> Result<(), StoreError> {
        match self.iam.get_user().user_name(user).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchEntity") => {
                match self.iam.create_user().user_name(user).send().await {
                    Ok(_) => Ok(()),
                    Err(e) if e.code() == Some("EntityAlreadyExists") => Ok(()),
                    Err(e) => Err(call_err("IAM", "CreateUser", user, e)),
                }
            }
            Err(e) => Err(call_err("IAM", "GetUser", user, e)),
        }
    }

    /// A new access key for `user`, creating the user first where the server
    /// needs that (AWS answers NoSuchEntity; SeaweedFS creates the user itself).
    pub async fn create_key(&self, user: &str) -> Result<Credentials, StoreError> {
        let out = match self.iam.create_access_key().user_name(user).send().await {
            Ok(out) => out,
            Err(e) if e.code() == Some("NoSuchEntity") => {
                self.ensure_user(user).await?;
                self.iam
                    .create_access_key()
                    .user_name(user)
                    .send()
                    .await
                    .map_err(|e| call_err("IAM", "CreateAccessKey", user, e))?
            }
            Err(e) => return Err(call_err("IAM", "CreateAccessKey", user, e)),
        };
        let key = out.access_key().ok_or_else(|| StoreError::Malformed {
            op: "CreateAccessKey",
            subject: user.to_owned(),
            what: "an AccessKey",
        })?;
        Ok(Credentials::new(key.access_key_id(), key.secret_access_key()))
    }

    /// Deletes one key; a key that is already gone is fine.
    pub async fn delete_key(&self, user: &str, access_key_id: &str) -> Result<(), StoreError> {
        match self
            .iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(access_key_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(()),
            // The key id stays out of the error: errors become Events.
            Err(e) => Err(call_err("IAM", "DeleteAccessKey", user, e)),
        }
    }

    /// Writes the hook's policy `KubeflowProject<ns>` for user `<ns>`.
    pub async fn put_policy(&self, namespace: &str) -> Result<(), StoreError> {
        self.iam
            .put_user_policy()
            .user_name(namespace)
            .policy_name(policy_name(namespace))
            .policy_document(policy_document(&self.bucket, namespace))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_err("IAM", "PutUserPolicy", namespace, e))
    }

    /// Writes the policy only when the stored one differs (each IAM write
    /// rewrites SeaweedFS's whole identity file). Returns whether it wrote.
    pub async fn ensure_policy(&self, namespace: &str) -> Result<bool, StoreError> {
        let want: Option<serde_json::Value> =
            serde_json::from_str(&policy_document(&self.bucket, namespace)).ok();
        if let Some(stored) = self.get_policy(namespace).await? {
            // AWS returns the document URL-encoded; SeaweedFS returns it as is.
            let decoded = percent_decode(&stored);
            let stored: Option<serde_json::Value> = serde_json::from_str(&stored)
                .ok()
                .or_else(|| serde_json::from_str(&decoded).ok());
            if stored.is_some() && stored == want {
                return Ok(false);
            }
        }
        self.put_policy(namespace).await?;
        Ok(true)
    }

    /// The policy document stored for the namespace, if any.
    pub async fn get_policy(&self, namespace: &str) -> Result<Option<String>, StoreError> {
        match self
            .iam
            .get_user_policy()
            .user_name(namespace)
            .policy_name(policy_name(namespace))
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.policy_document().to_owned())),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(None),
            Err(e) => Err(call_err("IAM", "GetUserPolicy", namespace, e)),
        }
    }

    /// Whether the IAM user exists.
    pub async fn user_exists(&self, user: &str) -> Result<bool, StoreError> {
        match self.iam.get_user().user_name(user).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(false),
            Err(e) => Err(call_err("IAM", "GetUser", user, e)),
        }
    }

    /// Removes the namespace's keys, policy and user; each step tolerates "already gone".
    pub async fn delete_identity(&self, namespace: &str) -> Result<usize, StoreError> {
        let keys = self.list_keys(namespace).await?;
        for id in &keys {
            self.delete_key(namespace, id).await?;
        }
        match self
            .iam
            .delete_user_policy()
            .user_name(namespace)
            .policy_name(policy_name(namespace))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("NoSuchEntity") => {}
            Err(e) => return Err(call_err("IAM", "DeleteUserPolicy", namespace, e)),
        }
        match self.iam.delete_user().user_name(namespace).send().await {
            Ok(_) => {}
            Err(e) if e.code() == Some("NoSuchEntity") => {}
            Err(e) => return Err(call_err("IAM", "DeleteUser", namespace, e)),
        }
        Ok(keys.len())
    }

    /// Creates the bucket when it is missing (upstream does it with `weed shell`).
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        match self.s3.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(head) => match self.s3.create_bucket().bucket(&self.bucket).send().await {
                Ok(_) => Ok(()),
                Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")) => {
                    Ok(())
                }
                Err(e) => {
                    tracing::debug!(error = %DisplayErrorContext(&head), "HeadBucket failed before CreateBucket");
                    Err(call_err("S3", "CreateBucket", &self.bucket, e))
                }
            },
        }
    }

    /// The bucket's lifecycle rules (empty when it has none).
    pub async fn lifecycle_rules(&self) -> Result<Vec<LifecycleRule>, StoreError> {
        match self
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => Ok(out.rules().to_vec()),
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(Vec::new()),
            Err(e) => Err(call_err("S3", "GetBucketLifecycleConfiguration", &self.bucket, e)),
        }
    }

    /// Sets rule `private-artifacts` to expire after `days`, or removes it when
    /// `days <= 0`. Unlike the hook, other rules on the bucket are kept.
    /// Returns whether anything changed.
    pub async fn ensure_lifecycle(&self, days: i64) -> Result<bool, StoreError> {
        let current = self.lifecycle_rules().await?;
        let others: Vec<LifecycleRule> = current
            .iter()
            .filter(|r| r.id() != Some(LIFECYCLE_RULE_ID))
            .cloned()
            .collect();
        let ours = current.iter().find(|r| r.id() == Some(LIFECYCLE_RULE_ID));
        if days <= 0 {
            if ours.is_none() {
                return Ok(false);
            }
            if others.is_empty() {
                self.s3
                    .delete_bucket_lifecycle()
                    .bucket(&self.bucket)
                    .send()
                    .await
                    .map_err(|e| call_err("S3", "DeleteBucketLifecycle", &self.bucket, e))?;
            } else {
                self.put_rules(others).await?;
            }
            return Ok(true);
        }
        let days = i32::try_from(days).map_err(|_| StoreError::Lifecycle {
            bucket: self.bucket.clone(),
            message: format!("{days} days does not fit S3's 32-bit Days"),
        })?;
        let up_to_date = ours.is_some_and(|r| {
            r.status() == &ExpirationStatus::Enabled
                && r.expiration().and_then(|e| e.days()) == Some(days)
                && r.filter().and_then(|f| f.prefix()) == Some(LIFECYCLE_PREFIX)
        });
        if up_to_date {
            return Ok(false);
        }
        let rule = LifecycleRule::builder()
            .id(LIFECYCLE_RULE_ID)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix(LIFECYCLE_PREFIX).build())
            .expiration(LifecycleExpiration::builder().days(days).build())
            .build()
            .map_err(|e| StoreError::Lifecycle {
                bucket: self.bucket.clone(),
                message: e.to_string(),
            })?;
        let mut rules = others;
        rules.push(rule);
        self.put_rules(rules).await?;
        Ok(true)
    }

    async fn put_rules(&self, rules: Vec<LifecycleRule>) -> Result<(), StoreError> {
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| StoreError::Lifecycle {
                bucket: self.bucket.clone(),
                message: e.to_string(),
            })?;
        self.s3
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_err("S3", "PutBucketLifecycleConfiguration", &self.bucket, e))
    }

    /// Creates the bucket if missing and sets the lifecycle rule, retrying
    /// with backoff until SeaweedFS answers (it may start after us).
    pub async fn prepare(&self, retention_days: i64) {
        let mut delay = std::time::Duration::from_millis(500);
        loop {
            let result = async {
                self.ensure_bucket().await?;
                self.ensure_lifecycle(retention_days).await
            }
            .await;
            match result {
                Ok(changed) => {
                    tracing::info!(bucket = %self.bucket, lifecycle_changed = changed, "bucket ready");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "SeaweedFS not ready");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(30));
                }
            }
        }
    }

    /// Deletes every object under `prefix` (used when artifacts are not kept).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        let mut deleted = 0;
        loop {
            let out = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .send()
                .await
                .map_err(|e| call_err("S3", "ListObjectsV2", prefix, e))?;
            let keys: Vec<String> = out
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect();
            if keys.is_empty() {
                return Ok(deleted);
            }
            for key in keys {
                self.s3
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| call_err("S3", "DeleteObject", &key, e))?;
                deleted += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding_of_policy_documents() {
        assert_eq!(percent_decode("%7B%22a%22%3A+1%7D"), "{\"a\": 1}");
        assert_eq!(percent_decode("{\"plain\": true}"), "{\"plain\": true}");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
    }
}
