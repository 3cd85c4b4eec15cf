//! Decode steps per second of the bare model (no engine, no sampling), for work on the
//! kernels: a 60-token prompt per stream, then 64 steps that decode one token for each.
//! `cairn bench generate` is the benchmark of record (the engine, side by side with
//! llama.cpp); this isolates the forward pass.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p cairn-llm --example decode_speed -- MODEL 1,8 [fast|q|f32]`

use std::time::Instant;

use cairn_llm::{DecoderModel, GgufFile, WeightFormat};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, streams, rest @ ..] = args.as_slice() else {
        return Err("usage: decode_speed MODEL STREAMS[,STREAMS…] [fast|q|f32]".into());
    };
    let format = match rest.first().map(String::as_str) {
        None | Some("fast") => WeightFormat::Fast,
        Some("q") => WeightFormat::Quantized,
        Some("f32") => WeightFormat::F32,
        Some(other) => return Err(format!("unknown weight format {other}").into()),
    };
    let gguf = GgufFile::open(std::path::Path::new(model))?;
    let model = DecoderModel::load(&gguf, &candle_core::Device::Cpu, format)?;
    let (prompt_len, steps) = (60u32, 64);
    for streams in streams.split(',') {
        let streams: usize = streams.parse()?;
        let mut caches: Vec<_> = (0..streams).map(|_| model.new_cache()).collect();
        let prompt: Vec<u32> = (0..prompt_len).map(|i| 200 + i * 7).collect();
        let started = Instant::now();
        for cache in caches.iter_mut() {
            model.forward_cached(&mut [(&prompt[..], cache)])?;
        }
        let prefill = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for step in 0..steps {
            let tokens: Vec<[u32; 1]> = (0..streams)
                .map(|i| [(300 + step * 3 + i) as u32])
                .collect();
            let mut batch: Vec<(&[u32], &mut _)> = tokens
                .iter()
                .zip(caches.iter_mut())
                .map(|(t, c)| (&t[..], c))
                .collect();
            model.forward_cached(&mut batch)?;
        }
        let decode = started.elapsed().as_secs_f64();
        println!(
            "streams {streams}: {:.1} ms/step, {:.1} tok/s; prefill {:.0} tok/s",
            decode * 1000.0 / steps as f64,
            (steps * streams) as f64 / decode,
            (prompt_len as usize * streams) as f64 / prefill
        );
    }
    Ok(())
}
