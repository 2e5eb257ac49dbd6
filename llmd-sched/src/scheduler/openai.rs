//! Picking from an OpenAI body: parse, tokenize with the model's tokenizer
//! (or estimate from text, said in the explanation), pick.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Scheduler;
use crate::decision::Decision;
use crate::error::ScheduleError;
use crate::model::openai::{OpenAiKind, OpenAiPrompt, OpenAiRequest, PromptTokenizer};
use crate::model::{LoraRef, Prompt, Request};

/// The note a decision carries when no tokenizer produced its token ids.
pub const ESTIMATE_NOTE: &str =
    "no tokenizer for this model: token ids estimated from text (set one with set_tokenizer; precise prefix matches need the engine's ids)";

/// The explanation's note for a multimodal chat body whose model has a
/// tokenizer: it is routed on an estimate rather than refused.
pub const MULTIMODAL_ESTIMATE_NOTE: &str =
    "multimodal chat: the engine's placeholder tokens come from its processor, which the router does not run; token ids estimated from the text";

/// Why a body's token ids were estimated: the metrics label and the
/// explanation's note.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    reason: &'static str,
    note: &'static str,
}

impl Scheduler {
    /// Uses `tok` for requests to `model` ("" for any model without its own).
    pub fn set_tokenizer(&self, model: &str, tok: Arc<dyn PromptTokenizer>) {
        self.tokenizers.write().insert(model.to_string(), tok);
    }

    /// Removes the tokenizer of `model`; true if there was one.
    pub fn remove_tokenizer(&self, model: &str) -> bool {
        self.tokenizers.write().remove(model).is_some()
    }

    /// The tokenizer set for the first of `models` that has one of its
    /// own, else the one set for every model (""): a LoRA adapter's own
    /// tokenizer is found before the catch-all.
    fn tokenizer_for(&self, models: &[&str]) -> Option<Arc<dyn PromptTokenizer>> {
        let t = self.tokenizers.read();
        models
            .iter()
            .find_map(|m| t.get(*m))
            .or_else(|| t.get(""))
            .cloned()
    }

    /// The request an OpenAI body describes, with its token ids when a
    /// tokenizer is set for its model (else its text, for estimates), and
    /// `None` when it was tokenized or the note saying why its ids are
    /// estimated ([`ESTIMATE_NOTE`], [`MULTIMODAL_ESTIMATE_NOTE`]).
    /// `id` names the request (lifecycle calls use it); the `model` field
    /// is taken as a LoRA adapter when an endpoint lists it as one.
    pub fn request_from_openai(
        &self,
        id: &str,
        path: &str,
        body: &[u8],
        headers: &BTreeMap<String, String>,
    ) -> Result<(Request, Option<&'static str>), ScheduleError> {
        let (req, estimate) = self.openai_request(id, path, body, headers)?;
        Ok((req, estimate.map(|e| e.note)))
    }

    /// [`Scheduler::request_from_openai`], with why its ids are estimated.
    fn openai_request(
        &self,
        id: &str,
        path: &str,
        body: &[u8],
        headers: &BTreeMap<String, String>,
    ) -> Result<(Request, Option<Estimate>), ScheduleError> {
        let r = OpenAiRequest::parse(path, body)?;
        let (model, lora) = self.resolve_model(&r.model);
        // The name the body asks for (an adapter's, when it is one), then
        // the model serving it.
        let tok = self.tokenizer_for(&[&r.model, &model]);
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect::<BTreeMap<_, _>>();
        let session_id = headers
            .get("x-session-id")
            .cloned()
            .or_else(|| r.user.clone());
        let mm_items = r.multimodal_items();
        let media = r.has_media_parts();
        // A P/D decode body carrying its prefill's ids: the engine takes
        // them as they are.
        let reused = r.reused_prompt_ids();
        let (prompt, estimated) = match (&tok, &r.kind, &r.prompt) {
            (_, _, _) if reused.is_some() => {
                (Prompt::Tokens(reused.unwrap_or_default().to_vec()), None)
            }
            // A field that changes the engine's prompt in a way the router
            // does not render: routed on an estimate (a prompt's own ids
            // where it gives them), and said so.
            (_, _, Some(OpenAiPrompt::Tokens(ids))) if r.not_rendered.is_some() => {
                let left = tok.as_ref().map_or(true, |t| t.truncates_left());
                (
                    Prompt::Tokens(r.truncate_ids(ids.clone(), left)?),
                    r.not_rendered.map(not_rendered),
                )
            }
            _ if r.not_rendered.is_some() => (
                Prompt::Text(r.estimate_text()),
                r.not_rendered.map(not_rendered),
            ),
            // A tokenizer whose ids are not the engine's for this body.
            (Some(t), kind, Some(OpenAiPrompt::Text(_)) | None)
                if t.not_exact(*kind == OpenAiKind::ChatCompletions).is_some() =>
            {
                (
                    Prompt::Text(r.estimate_text()),
                    t.not_exact(*kind == OpenAiKind::ChatCompletions)
                        .map(|note| Estimate {
                            reason: "engine_renders",
                            note,
                        }),
                )
            }
            (_, OpenAiKind::Completions, Some(OpenAiPrompt::Tokens(ids))) => {
                // vLLM's generative tokenizers cut on the left (keep the
                // last tokens); a configured tokenizer says the same.
                let left = tok.as_ref().map_or(true, |t| t.truncates_left());
                (Prompt::Tokens(r.truncate_ids(ids.clone(), left)?), None)
            }
            (Some(t), OpenAiKind::Completions, Some(OpenAiPrompt::Text(s))) => (
                Prompt::Tokens(
                    t.encode_prompt(s, &r)
                        .map_err(ScheduleError::InvalidRequest)?,
                ),
                None,
            ),
            // Media parts expand to placeholder tokens only the engine's
            // processor knows: such a body is estimated (and routed), not
            // refused.
            (Some(t), OpenAiKind::ChatCompletions, _) if !media => (
                Prompt::Tokens(
                    t.encode_chat(&r, session_id.as_deref())
                        .map_err(ScheduleError::InvalidRequest)?,
                ),
                None,
            ),
            (Some(_), OpenAiKind::ChatCompletions, _) => (
                Prompt::Text(r.estimate_text()),
                Some(Estimate {
                    reason: "multimodal",
                    note: MULTIMODAL_ESTIMATE_NOTE,
                }),
            ),
            _ => (
                Prompt::Text(r.estimate_text()),
                Some(Estimate {
                    reason: "no_tokenizer",
                    note: ESTIMATE_NOTE,
                }),
            ),
        };
        Ok((
            Request {
                id: id.to_string(),
                model,
                prompt,
                lora,
                cache_salt: r.cache_salt.clone(),
                session_id,
                headers,
                max_output_tokens: r.max_tokens,
                multimodal: media || !mm_items.is_empty(),
                mm_items,
                ..Default::default()
            },
            estimated,
        ))
    }

    /// Picks for an OpenAI body (see [`Scheduler::request_from_openai`]).
    /// When its ids are estimated (no tokenizer for the model, media parts,
    /// a field the router does not render, an engine that renders
    /// otherwise) the decision's explanation says why, and
    /// `llmd_openai_prompts_estimated_total{reason}` counts it.
    pub fn pick_openai(
        &self,
        id: &str,
        path: &str,
        body: &[u8],
        headers: &BTreeMap<String, String>,
    ) -> Result<Decision, ScheduleError> {
        let (req, estimate) = self.openai_request(id, path, body, headers)?;
        let mut d = self.pick(&req)?;
        if let Some(e) = estimate {
            self.metrics.record_prompt_estimated(e.reason);
            d.explanation.push_note(e.note.to_string());
        }
        Ok(d)
    }

    /// A `model` naming an adapter some endpoint serves is that adapter on
    /// the endpoint's base model.
    fn resolve_model(&self, model: &str) -> (String, Option<LoraRef>) {
        let fleet = self.fleet.read().clone();
        for ep in fleet.eps.iter() {
            if ep.info().lora_adapters.iter().any(|a| a == model) {
                let base = ep.info().model.clone().unwrap_or_default();
                return (
                    base,
                    Some(LoraRef {
                        name: model.to_string(),
                        ..Default::default()
                    }),
                );
            }
        }
        (model.to_string(), None)
    }
}

/// The estimate of a body whose field the router does not render.
fn not_rendered(n: crate::model::openai::NotRendered) -> Estimate {
    use crate::model::openai::NotRendered;
    Estimate {
        reason: match n {
            NotRendered::ChatTemplate => "chat_template",
            NotRendered::Suffix => "suffix",
            NotRendered::PromptEmbeds => "prompt_embeds",
            NotRendered::RenderCost => "render_cost",
        },
        note: n.note(),
    }
}
