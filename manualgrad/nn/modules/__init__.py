"""Module classes, one file per family, each re-exported here."""

import manualgrad.nn.modules.activation as _activation
import manualgrad.nn.modules.attention as _attention
import manualgrad.nn.modules.conv as _conv
import manualgrad.nn.modules.dropout as _dropout
import manualgrad.nn.modules.embedding as _embedding
import manualgrad.nn.modules.fused as _fused
import manualgrad.nn.modules.linear as _linear
import manualgrad.nn.modules.loss as _loss
import manualgrad.nn.modules.normalization as _normalization
import manualgrad.nn.modules.pooling as _pooling
from manualgrad.nn.modules.activation import *  # noqa: F403
from manualgrad.nn.modules.attention import *  # noqa: F403
from manualgrad.nn.modules.conv import *  # noqa: F403
from manualgrad.nn.modules.dropout import *  # noqa: F403
from manualgrad.nn.modules.embedding import *  # noqa: F403
from manualgrad.nn.modules.fused import *  # noqa: F403
from manualgrad.nn.modules.linear import *  # noqa: F403
from manualgrad.nn.modules.loss import *  # noqa: F403
from manualgrad.nn.modules.normalization import *  # noqa: F403
from manualgrad.nn.modules.pooling import *  # noqa: F403

__all__ = [
    *_activation.__all__,
    *_attention.__all__,
    *_conv.__all__,
    *_dropout.__all__,
    *_embedding.__all__,
    *_fused.__all__,
    *_linear.__all__,
    *_loss.__all__,
    *_normalization.__all__,
    *_pooling.__all__,
]
