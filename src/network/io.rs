//! Saving and loading a [`Network`] (feature `serde`).
//!
//! The format is documented on [`FORMAT_VERSION`].

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::activation::Activation;
use crate::error::Error;
use crate::matrix::Matrix;
use crate::scalar::Scalar;

use super::{Layer, Loss, Network};

/// The version of the save format this build writes (and the newest it reads): 1.
///
/// # The format (version 1)
/// A network serialises as one record — in JSON through [`Network::to_json`] /
/// [`Network::save`], or in any serde format through `Network`'s `Serialize` and
/// `Deserialize`:
///
/// ```text
/// {
///   "format": "deltaprop-network",       the magic string: this is a deltaprop network
///   "version": 1,                         FORMAT_VERSION of the writer
///   "scalar": "f32",                      the element type, "f32" or "f64"
///   "loss": "CrossEntropy",               "SquaredError" or "CrossEntropy"
///   "layers": [                           input side first
///     { "inputs": 64, "outputs": 32,      H and L
///       "activation": "Sigmoid",          as Activation::name spells it
///       "weights": [ … ],                 W, H·L numbers, row-major (row r: the weights
///                                         leaving input r)
///       "bias": [ … ] },                  b, L numbers
///     …
///   ]
/// }
/// ```
///
/// Numbers are written in the shortest form that reads back to the same value, so a
/// round trip is exact, bit for bit. Loading checks everything a network made by
/// [`Network::new`] satisfies — the magic, the version, the element type, every size, every
/// value finite, the layers chaining, Softmax only at the output — and a file that fails any
/// check (truncated, corrupt, from a newer version or for the other element type) is an
/// [`Error::InvalidFormat`] saying what is wrong. The workspaces are not saved.
pub const FORMAT_VERSION: u32 = 1;

/// The magic string of the `format` field.
const MAGIC: &str = "deltaprop-network";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr<T> {
    format: String,
    version: u32,
    scalar: String,
    loss: String,
    layers: Vec<LayerRepr<T>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerRepr<T> {
    inputs: usize,
    outputs: usize,
    activation: String,
    weights: Vec<T>,
    bias: Vec<T>,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidFormat {
        reason: reason.into(),
    }
}

fn activation_from_name(name: &str) -> Option<Activation> {
    Activation::ELEMENTWISE
        .into_iter()
        .chain([Activation::Softmax])
        .find(|a| a.name() == name)
}

impl<T: Scalar> FileRepr<T> {
    fn from_network(net: &Network<T>) -> Self {
        FileRepr {
            format: MAGIC.to_owned(),
            version: FORMAT_VERSION,
            scalar: T::NAME.to_owned(),
            loss: net.loss.name().to_owned(),
            layers: net
                .layers
                .iter()
                .map(|l| LayerRepr {
                    inputs: l.inputs(),
                    outputs: l.outputs(),
                    activation: l.act.name().to_owned(),
                    weights: l.w.to_row_major(),
                    bias: l.b.clone(),
                })
                .collect(),
        }
    }

    fn into_network(self) -> Result<Network<T>, Error> {
        if self.format != MAGIC {
            return Err(invalid(format!(
                "the format field is {:?}, not {MAGIC:?}",
                self.format
            )));
        }
        if self.version == 0 || self.version > FORMAT_VERSION {
            return Err(invalid(format!(
                "format version {} (this build reads versions 1 to {FORMAT_VERSION})",
                self.version
            )));
        }
        if self.scalar != T::NAME {
            return Err(invalid(format!(
                "the network holds {}, but {} was asked for",
                self.scalar,
                T::NAME
            )));
        }
        let loss = match self.loss.as_str() {
            "SquaredError" => Loss::SquaredError,
            "CrossEntropy" => Loss::CrossEntropy,
            other => return Err(invalid(format!("unknown loss {other:?}"))),
        };
        let mut layers = Vec::with_capacity(self.layers.len());
        for (k, l) in self.layers.into_iter().enumerate() {
            let act = activation_from_name(&l.activation).ok_or_else(|| {
                invalid(format!("layer {k}: unknown activation {:?}", l.activation))
            })?;
            let expected = l.inputs.checked_mul(l.outputs);
            if expected != Some(l.weights.len()) || l.bias.len() != l.outputs {
                return Err(invalid(format!(
                    "layer {k}: {} weights and {} biases for {} inputs × {} outputs",
                    l.weights.len(),
                    l.bias.len(),
                    l.inputs,
                    l.outputs
                )));
            }
            let w = Matrix::from_row_major(l.inputs, l.outputs, &l.weights)
                .map_err(|e| invalid(format!("layer {k}: {e}")))?;
            let layer =
                Layer::new(w, l.bias, act).map_err(|e| invalid(format!("layer {k}: {e}")))?;
            layers.push(layer);
        }
        Network::new(layers, loss).map_err(|e| invalid(e.to_string()))
    }
}

impl<T: Scalar + Serialize> Serialize for Network<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FileRepr::from_network(self).serialize(serializer)
    }
}

impl<'de, T: Scalar + DeserializeOwned> Deserialize<'de> for Network<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        FileRepr::<T>::deserialize(deserializer)?
            .into_network()
            .map_err(D::Error::custom)
    }
}

impl<T: Scalar + Serialize + DeserializeOwned> Network<T> {
    /// The network in the save format, as JSON text (the layout: [`FORMAT_VERSION`]).
    ///
    /// ```
    /// use deltaprop::{Activation, Network};
    /// let net = Network::<f32>::builder(3).layer(2, Activation::Tanh).build()?;
    /// let text = net.to_json();
    /// assert!(text.starts_with(r#"{"format":"deltaprop-network","version":1,"scalar":"f32""#));
    /// let back = Network::<f32>::from_json(&text)?;
    /// assert_eq!(back.layers()[0].weights().to_row_major(), net.layers()[0].weights().to_row_major());
    /// assert!(Network::<f32>::from_json(&text[..text.len() - 9]).is_err());  // truncated
    /// assert!(Network::<f64>::from_json(&text).is_err());                    // other type
    /// # Ok::<(), deltaprop::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        serde_json::to_string(&FileRepr::from_network(self))
            .expect("serialising numbers and strings to a String cannot fail")
    }

    /// A network from the JSON text of [`to_json`](Self::to_json). Errors
    /// ([`Error::InvalidFormat`]) on anything that is not a valid saved network of `T`.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        serde_json::from_str::<FileRepr<T>>(text)
            .map_err(|e| invalid(e.to_string()))?
            .into_network()
    }

    /// Writes the network to the file `path` as [`to_json`](Self::to_json) text.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<(), Error> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Reads a network written by [`save`](Self::save).
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_json(&text)
    }
}
