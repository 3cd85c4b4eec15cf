//! Chat templates: the Jinja template a model ships (`tokenizer.chat_template`) that turns a
//! list of messages into the exact prompt text the model was trained on.
//!
//! Rendered with MiniJinja the way Hugging Face renders them: `trim_blocks` and
//! `lstrip_blocks` on, Python string and dict methods (`.strip()`, `.startswith()`,
//! `.items()`, …) available, `raise_exception(msg)` failing the render, and the variables
//! `messages`, `add_generation_prompt`, `bos_token` and `eos_token`.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, ErrorKind, context};

use super::gguf::GgufFile;
use super::tokenizer::GgufTokenizer;
use crate::error::{LlmError, Result};

const TEMPLATE_NAME: &str = "chat";

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The person asking.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The role's name in chat templates.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A compiled chat template with the model's BOS and EOS texts.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error is an [`LlmError::ChatTemplate`] error.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| LlmError::ChatTemplate(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| LlmError::ChatTemplate(format!("cannot parse: {e:#}")))?;
        Ok(Self {
            env,
            bos: bos.to_string(),
            eos: eos.to_string(),
        })
    }

    /// The template in `tokenizer.chat_template`, with the BOS and EOS texts of `tokenizer`.
    pub fn from_gguf(gguf: &GgufFile, tokenizer: &GgufTokenizer) -> Result<Self> {
        if !gguf.has("tokenizer.chat_template") {
            return Err(gguf.unsupported(
                "the file has no chat template (tokenizer.chat_template); an instruct model is needed"
                    .to_string(),
            ));
        }
        let source = gguf.string("tokenizer.chat_template")?;
        let text = |t: Option<&super::tokenizer::SpecialToken>| {
            t.map(|t| t.text.clone()).unwrap_or_default()
        };
        Self::new(source, &text(tokenizer.bos()), &text(tokenizer.eos()))
    }

    /// The prompt text of `messages`; with `add_generation_prompt`, it ends where the
    /// assistant's answer starts.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let messages: Vec<minijinja::Value> = messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| LlmError::ChatTemplate(e.to_string()))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos.as_str(),
                eos_token => self.eos.as_str(),
            })
            .map_err(|e| LlmError::ChatTemplate(format!("cannot render: {e:#}")))
    }

    /// The BOS text the template sees as `bos_token`.
    pub fn bos_token(&self) -> &str {
        &self.bos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of Qwen2's and SmolLM2's templates, with a Python method and an exception.
    const TEMPLATE: &str = "{% for message in messages %}
{% if message['role'] == 'tool' %}{{ raise_exception('no tools here') }}{% endif %}
{{ '<|im_start|>' + message['role'] + '\n' + message['content'].strip() + '<|im_end|>\n' }}{% endfor %}
{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_messages_and_the_generation_prompt() {
        let t = ChatTemplate::new(TEMPLATE, "<s>", "</s>").expect("template");
        let out = t
            .render(
                &[
                    ChatMessage::new(Role::System, "Be brief."),
                    ChatMessage::new(Role::User, "  Hi!  "),
                ],
                true,
            )
            .expect("render");
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
        );
        let out = t
            .render(&[ChatMessage::new(Role::User, "Hi")], false)
            .expect("render");
        assert_eq!(out, "<|im_start|>user\nHi<|im_end|>\n");
    }

    #[test]
    fn bos_and_eos_are_variables() {
        let t = ChatTemplate::new("{{ bos_token }}x{{ eos_token }}", "<s>", "</s>").expect("t");
        assert_eq!(t.render(&[], false).expect("render"), "<s>x</s>");
    }

    #[test]
    fn syntax_errors_and_raised_exceptions_are_errors() {
        let err = ChatTemplate::new("{% for %}", "", "").expect_err("bad syntax");
        assert!(matches!(err, LlmError::ChatTemplate(_)), "{err}");
        let t = ChatTemplate::new("{{ raise_exception('only user turns') }}", "", "").expect("t");
        let err = t.render(&[], true).expect_err("raises");
        assert!(err.to_string().contains("only user turns"), "{err}");
    }
}
