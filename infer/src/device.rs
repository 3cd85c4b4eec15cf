//! Device choice: where models run. The CPU by default; the first CUDA GPU when the crate is
//! built with the `cuda` feature.

use candle_core::Device;

use crate::error::Result;

/// The device models should run on: CUDA device 0 when built with the `cuda` feature, the
/// CPU otherwise.
pub fn pick_device() -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        let device = Device::new_cuda(0)?;
        tracing::info!("running models on CUDA device 0");
        Ok(device)
    }
    #[cfg(not(feature = "cuda"))]
    {
        tracing::debug!("running models on the CPU");
        Ok(Device::Cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_cuda_the_cpu_is_picked() {
        let device = pick_device().expect("the CPU is always available");
        assert!(device.is_cpu());
    }
}
