//! Object-store locations: a plain path or `file://` URL on local disk, or
//! `s3://`, `gs://`, `az://`/`abfs://`, `http(s)://` (credentials from the
//! environment, as each object_store builder's `from_env` reads them).

use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

/// Errors resolving or using a store location.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL cannot be understood.
    #[error("invalid location `{url}`: {reason}")]
    Invalid {
        /// The location as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The object store failed.
    #[error("{url}: {source}")]
    Store {
        /// Object URL.
        url: String,
        /// Underlying error.
        source: object_store::Error,
    },
}

impl StoreError {
    /// True when the store said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }
}

/// The chunks of an object read by [`Location::get_stream`].
pub type ByteStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, StoreError>>;

/// A directory-like location on an object store.
#[derive(Debug, Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
    local_dir: Option<std::path::PathBuf>,
}

impl Location {
    /// Resolves a plain path or URL. Local directories are not created here.
    pub fn parse(location: &str) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::Invalid {
            url: location.to_string(),
            reason,
        };
        let url = match Url::parse(location) {
            // A Windows drive letter or a bare path is not a URL scheme.
            Ok(u) if u.scheme().len() > 1 => Some(u),
            _ => None,
        };
        let Some(url) = url else {
            return Self::local(std::path::Path::new(location), location);
        };
        let prefix = Path::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|_| invalid("not a local file URL".into()))?;
                return Self::local(&path, location);
            }
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            "az" | "adl" | "azure" | "abfs" | "abfss" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            "http" | "https" => {
                let base = format!("{}://{}", url.scheme(), url.authority());
                // A plain `http://` URL is the user's explicit choice (object_store refuses it by default).
                let options = object_store::ClientOptions::new().with_allow_http(url.scheme() == "http");
                Arc::new(
                    object_store::http::HttpBuilder::new()
                        .with_url(base)
                        .with_client_options(options)
                        .build()
                        .map_err(|e| invalid(e.to_string()))?,
                )
            }
            other => return Err(invalid(format!("unsupported scheme `{other}`"))),
        };
        Ok(Self {
            store,
            prefix,
            url: location.trim_end_matches('/').to_string(),
            local_dir: None,
        })
    }

    fn local(path: &std::path::Path, given: &str) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::Invalid {
            url: given.to_string(),
            reason,
        };
        let abs = std::path::absolute(path).map_err(|e| invalid(e.to_string()))?;
        let prefix = Path::from_absolute_path(&abs).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            store: Arc::new(LocalFileSystem::new()),
            prefix,
            url: given.trim_end_matches('/').to_string(),
            local_dir: Some(abs),
        })
    }

    /// The location as the user gave it (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The local directory, when the location is on local disk.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        self.local_dir.as_deref()
    }

    /// The path of a child object, `rel` being `/`-separated.
    pub fn child(&self, rel: &str) -> Path {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |p, part| p.clone().join(part))
    }

    /// Human-readable URL of a child object, for messages.
    pub fn child_url(&self, rel: &str) -> String {
        format!("{}/{}", self.url, rel)
    }

    fn err(&self, rel: &str, source: object_store::Error) -> StoreError {
        StoreError::Store {
            url: self.child_url(rel),
            source,
        }
    }

    /// Reads a whole child object.
    pub async fn get(&self, rel: &str) -> Result<bytes::Bytes, StoreError> {
        let got = self
            .store
            .get(&self.child(rel))
            .await
            .map_err(|e| self.err(rel, e))?;
        got.bytes().await.map_err(|e| self.err(rel, e))
    }

    /// Streams a child object: the size the store reports, then its bytes in
    /// chunks (never the whole object in memory).
    pub async fn get_stream(&self, rel: &str) -> Result<(u64, ByteStream), StoreError> {
        use futures::StreamExt;
        let got = self
            .store
            .get(&self.child(rel))
            .await
            .map_err(|e| self.err(rel, e))?;
        let size = got.meta.size;
        let url = self.child_url(rel);
        let stream = got.into_stream().map(move |chunk| {
            chunk.map_err(|source| StoreError::Store {
                url: url.clone(),
                source,
            })
        });
        Ok((size, stream.boxed()))
    }

    /// True when the child object exists.
    pub async fn exists(&self, rel: &str) -> Result<bool, StoreError> {
        match self.store.head(&self.child(rel)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(rel, e)),
        }
    }

    /// Writes a whole child object.
    pub async fn put(&self, rel: &str, data: bytes::Bytes) -> Result<(), StoreError> {
        self.store
            .put(&self.child(rel), PutPayload::from_bytes(data))
            .await
            .map_err(|e| self.err(rel, e))?;
        Ok(())
    }

    /// Moves a child object (copy + delete where the store has no rename).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.store
            .rename(&self.child(from), &self.child(to))
            .await
            .map_err(|e| self.err(from, e))
    }

    /// Deletes a child object; a missing object is not an error.
    pub async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        match self.store.delete(&self.child(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(rel, e)),
        }
    }

    /// Relative paths of every object under a child prefix (`""` for all), sorted.
    pub async fn list(&self, rel: &str) -> Result<Vec<String>, StoreError> {
        use futures::TryStreamExt;
        let prefix = self.child(rel);
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.err(rel, e))?;
        let base = format!("{}/", self.prefix);
        let mut names: Vec<String> = objects
            .iter()
            .map(|m| m.location.to_string())
            .map(|p| p.strip_prefix(&base).map(str::to_string).unwrap_or(p))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Deletes every object under a child prefix (best effort per object).
    pub async fn delete_prefix(&self, rel: &str) -> Result<(), StoreError> {
        use futures::TryStreamExt;
        let prefix = self.child(rel);
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.err(rel, e))?;
        for meta in objects {
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(rel, e)),
            }
        }
        if let Some(dir) = self.local_dir() {
            // Local stores leave empty directories behind; a missing one is fine.
            let _ = std::fs::remove_dir_all(dir.join(rel));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_put_get_rename_delete() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::parse(dir.path().join("ds").to_str().unwrap()).unwrap();
        loc.put("tmp/a.bin", bytes::Bytes::from_static(b"abc"))
            .await
            .unwrap();
        assert!(loc.exists("tmp/a.bin").await.unwrap());
        loc.rename("tmp/a.bin", "final/a.bin").await.unwrap();
        assert_eq!(&loc.get("final/a.bin").await.unwrap()[..], b"abc");
        assert!(!loc.exists("tmp/a.bin").await.unwrap());
        loc.delete_prefix("final").await.unwrap();
        assert!(!loc.exists("final/a.bin").await.unwrap());
        let file_url = format!("file://{}", dir.path().join("ds").display());
        let loc2 = Location::parse(&file_url).unwrap();
        assert_eq!(loc2.local_dir(), loc.local_dir());
    }

    #[test]
    fn unknown_scheme_is_refused() {
        let err = Location::parse("ftp://host/x").unwrap_err().to_string();
        assert!(err.contains("unsupported scheme"), "{err}");
    }
}
