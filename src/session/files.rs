//! The session's attachment objects in R2 (`crate::attachment`): those of
//! a deleted message go with it, and every one of the session's goes when
//! it is erased.

use super::Core;
use crate::crypto::Keyring;
use crate::error::AppError;
use crate::llm::Image;
use crate::protocol::MessageView;
use std::collections::HashMap;
use worker::Bucket;

/// Most keys R2 lists, or deletes, in one call.
const PAGE: u32 = 1000;

impl Core {
    fn files(&self) -> Result<Bucket, AppError> {
        crate::runtime::files(&self.env)
    }

    /// Deletes the objects of attachments the log has let go (a deleted
    /// message's). Best effort: the log no longer names them, so no link
    /// to them can be made again, and erasing the session sweeps them all.
    pub(super) async fn delete_unlinked(&self) {
        let keys = self.log.take_unlinked();
        if keys.is_empty() {
            return;
        }
        let deleted = match self.files() {
            Ok(b) => b.delete_multiple(keys).await.map_err(AppError::internal),
            Err(e) => Err(e),
        };
        if let Err(e) = deleted {
            self.log_error("attachment_delete_failed", &e);
        }
    }

    /// The images a vision prompt carries (`attachment::for_prompt`), by the
    /// seq of the message that sent each, read from R2 and opened. An image
    /// that cannot be read is left out (and logged): the turn goes on with
    /// the line that names it.
    pub(super) async fn prompt_images(
        &self,
        keys: &Keyring,
        history: &[MessageView],
    ) -> HashMap<u64, Vec<Image>> {
        use base64ct::{Base64, Encoding};
        let mut out: HashMap<u64, Vec<Image>> = HashMap::new();
        let wanted = crate::attachment::for_prompt(history);
        if wanted.is_empty() {
            return out;
        }
        let session = self.session_id();
        let Ok(bucket) = self.files() else {
            return out;
        };
        for (seq, view) in wanted {
            let read = async {
                let stored = self.log.file(keys, &view.id)?.ok_or(AppError::NotFound)?;
                crate::runtime::read_file(&bucket, keys, (&session, &view.id, stored.key)).await
            };
            match read.await {
                Ok(bytes) => out.entry(seq).or_default().push(Image {
                    media_type: view.kind.mime(),
                    base64: Base64::encode_string(&bytes),
                }),
                Err(e) => self.log_error("attachment_read_failed", &e),
            }
        }
        out
    }

    /// Deletes every object under the session's prefix, uploads no message
    /// carries included.
    pub(super) async fn erase_files(&self, session: &str) -> Result<(), AppError> {
        let bucket = self.files()?;
        let prefix = crate::attachment::prefix(session);
        loop {
            let page = bucket
                .list()
                .prefix(prefix.clone())
                .limit(PAGE)
                .execute()
                .await
                .map_err(AppError::internal)?;
            let keys: Vec<String> = page.objects().iter().map(|o| o.key()).collect();
            if keys.is_empty() {
                return Ok(());
            }
            bucket
                .delete_multiple(keys)
                .await
                .map_err(AppError::internal)?;
            if !page.truncated() {
                return Ok(());
            }
        }
    }
}
