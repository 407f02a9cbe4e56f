//! An edit that lands whole or not at all.
//!
//! A [`Transaction`] opens a [`Checkpoint`] on the model and hands the model on (it derefs to
//! it): everything done through it is journaled at the cost of the change itself. `commit`
//! keeps the edit; `rollback`, or dropping the transaction (an early `?` return, a panic
//! unwinding), replays the journal backwards, so the model is exactly as it was, use-list order
//! included, without a copy of it having been taken.

use std::ops::{Deref, DerefMut};

use crate::{Checkpoint, InvariantError, Model};

pub struct Transaction<'m> {
    model: &'m mut Model,
    checkpoint: Option<Checkpoint>,
}

impl<'m> Transaction<'m> {
    pub fn begin(model: &'m mut Model) -> Self {
        let checkpoint = Some(model.checkpoint());
        Self { model, checkpoint }
    }

    /// Keeps the edit (an enclosing transaction can still roll it back).
    pub fn commit(mut self) -> Result<(), InvariantError> {
        match self.checkpoint.take() {
            Some(checkpoint) => self.model.commit(checkpoint),
            None => Ok(()),
        }
    }

    /// Undoes the edit.
    pub fn rollback(mut self) -> Result<(), InvariantError> {
        match self.checkpoint.take() {
            Some(checkpoint) => self.model.rollback(checkpoint),
            None => Ok(()),
        }
    }
}

impl Deref for Transaction<'_> {
    type Target = Model;
    fn deref(&self) -> &Model {
        self.model
    }
}

impl DerefMut for Transaction<'_> {
    fn deref_mut(&mut self) -> &mut Model {
        self.model
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if let Some(checkpoint) = self.checkpoint.take() {
            // Closing in order cannot fail here: the transaction holds the model exclusively,
            // so no checkpoint opened inside it outlives it.
            let _ = self.model.rollback(checkpoint);
        }
    }
}
