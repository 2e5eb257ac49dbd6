//! Every real template in testdata/chat-templates compiles, and its content
//! format is the one vLLM 0.33.0's own detection gives
//! (testdata/chat-templates/content-formats.json).

use std::path::PathBuf;

use llmd_tokenize::chat::{detect_content_format, ContentFormat};
use llmd_tokenize::template::ChatTemplate;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/chat-templates")
}

#[test]
fn content_formats_match_vllms_detection() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("content-formats.json")).unwrap())
            .unwrap();
    let formats = expected["formats"].as_object().unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("jinja") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        ChatTemplate::new(&src).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let want = match formats[&stem].as_str() {
            Some("openai") => ContentFormat::OpenAi,
            Some("string") => ContentFormat::String,
            other => panic!("{stem}: no expected format ({other:?})"),
        };
        assert_eq!(detect_content_format(&src), want, "{stem}");
        seen += 1;
    }
    assert_eq!(seen, formats.len());
}
