"""The math: every op a ``torch.autograd.Function`` with a hand-derived backward.

Same names, signatures and defaults as ``torch.nn.functional``; also importable as
``manualgrad.nn.functional``. Each family module lists its public names in ``__all__``; this
package re-exports them all.
"""

import manualgrad.functional.activations as _activations
import manualgrad.functional.arithmetic as _arithmetic
import manualgrad.functional.attention as _attention
import manualgrad.functional.conv as _conv
import manualgrad.functional.conv_transpose as _conv_transpose
import manualgrad.functional.distance as _distance
import manualgrad.functional.dropout as _dropout
import manualgrad.functional.embedding as _embedding
import manualgrad.functional.fused as _fused
import manualgrad.functional.indexing as _indexing
import manualgrad.functional.linear as _linear
import manualgrad.functional.losses as _losses
import manualgrad.functional.masking as _masking
import manualgrad.functional.normalization as _normalization
import manualgrad.functional.penalties as _penalties
import manualgrad.functional.pooling as _pooling
import manualgrad.functional.products as _products
import manualgrad.functional.reductions as _reductions
import manualgrad.functional.resampling as _resampling
import manualgrad.functional.softmax as _softmax
import manualgrad.functional.transformer as _transformer
from manualgrad.functional.activations import *  # noqa: F403
from manualgrad.functional.arithmetic import *  # noqa: F403
from manualgrad.functional.attention import *  # noqa: F403
from manualgrad.functional.conv import *  # noqa: F403
from manualgrad.functional.conv_transpose import *  # noqa: F403
from manualgrad.functional.distance import *  # noqa: F403
from manualgrad.functional.dropout import *  # noqa: F403
from manualgrad.functional.embedding import *  # noqa: F403
from manualgrad.functional.fused import *  # noqa: F403
from manualgrad.functional.indexing import *  # noqa: F403
from manualgrad.functional.linear import *  # noqa: F403
from manualgrad.functional.losses import *  # noqa: F403
from manualgrad.functional.masking import *  # noqa: F403
from manualgrad.functional.normalization import *  # noqa: F403
from manualgrad.functional.penalties import *  # noqa: F403
from manualgrad.functional.pooling import *  # noqa: F403
from manualgrad.functional.products import *  # noqa: F403
from manualgrad.functional.reductions import *  # noqa: F403
from manualgrad.functional.resampling import *  # noqa: F403
from manualgrad.functional.softmax import *  # noqa: F403
from manualgrad.functional.transformer import *  # noqa: F403

__all__ = [
    *_activations.__all__,
    *_arithmetic.__all__,
    *_attention.__all__,
    *_conv.__all__,
    *_conv_transpose.__all__,
    *_distance.__all__,
    *_dropout.__all__,
    *_embedding.__all__,
    *_fused.__all__,
    *_indexing.__all__,
    *_linear.__all__,
    *_losses.__all__,
    *_masking.__all__,
    *_normalization.__all__,
    *_penalties.__all__,
    *_pooling.__all__,
    *_products.__all__,
    *_reductions.__all__,
    *_resampling.__all__,
    *_softmax.__all__,
    *_transformer.__all__,
]
